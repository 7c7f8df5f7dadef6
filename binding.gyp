{
  "targets": [
    {
      "target_name": "early_service",
      "sources": ["src/ipc/native/early_service.c", "src/ipc/native/fast_path.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]
    }
  ]
}
