// SPDX-License-Identifier: Apache-2.0
// get_counter answered in C: see fast_path.c.
#pragma once
#include <node_api.h>

int register_fast_path(napi_env env, napi_value exports);
