// SPDX-License-Identifier: Apache-2.0
//
// gio-peer: a GIO implementation of both sides of the early-service socket
// handoff, modelled on the seed's C reference (early-service.c), used by
// test/gio-interop.test.ts to prove that the Node.js daemon interoperates with
// GIO's g_unix_connection_send_fd() / g_unix_connection_receive_fd().
//
//   gio-peer serve SOCKET_PATH START_COUNTER
//       Listens on SOCKET_PATH with a GSocketService, like the reference.
//       Prints "ready" once listening. The counter does not tick.
//   gio-peer takeover SOCKET_PATH
//       Connects to SOCKET_PATH, sends "pass_state_and_terminate\n", receives
//       the listening socket with g_unix_connection_receive_fd(), reads the
//       counter line, prints "counter N", then serves on the RECEIVED socket
//       and prints "serving". The counter does not tick.
//
// Both modes answer, one line at a time (several per read are fine):
//   get_counter              -> "N\n"
//   set_counter V            -> "previous value P\n"
//   pass_state_and_terminate -> g_unix_connection_send_fd(listening fd), then
//                               "N\n"; it stops accepting at once, and exits
//                               0 once that write completed and the
//                               connections it had already accepted are
//                               answered and closed (at most 2 s).
//   anything else            -> "Invalid command\n"
// SIGTERM / SIGINT end the process with status 0. The socket path is never
// unlinked.
#include <gio/gio.h>
#include <gio/gunixconnection.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDOFF_REQUEST "pass_state_and_terminate"
#define SET_COUNTER_PREFIX "set_counter "
#define COUNTER_LINE_MAX 64
#define DRAIN_TIMEOUT_MS 2000
#define CLIENT_TIMEOUT_S 10

struct peer {
	GMainLoop *loop;
	GSocketService *service;
	GSocket *listen_socket;
	const char *socket_path;
	gint64 counter;
	gboolean handing_off;
	gboolean quitting;
	guint open_connections;
	int exit_status;
};

struct connection_info {
	struct peer *peer;
	GSocketConnection *connection;
	GDataInputStream *input;
	gchar *reply;
	gboolean terminate;
};

static void connection_read_next(struct connection_info *conn);

static void peer_quit_when_drained(struct peer *peer)
{
	if (peer->quitting && peer->open_connections == 0)
		g_main_loop_quit(peer->loop);
}

static gboolean drain_timeout_cb(gpointer user_data)
{
	struct peer *peer = user_data;

	if (peer->open_connections > 0)
		g_printerr("gio-peer: %u connection(s) still open after %d ms; exiting anyway\n",
			   peer->open_connections, DRAIN_TIMEOUT_MS);
	g_main_loop_quit(peer->loop);
	return G_SOURCE_REMOVE;
}

static void peer_begin_quit(struct peer *peer)
{
	if (peer->quitting)
		return;
	peer->quitting = TRUE;
	g_timeout_add(DRAIN_TIMEOUT_MS, drain_timeout_cb, peer);
	peer_quit_when_drained(peer);
}

static void connection_free(struct connection_info *conn)
{
	struct peer *peer = conn->peer;

	g_io_stream_close(G_IO_STREAM(conn->connection), NULL, NULL);
	g_object_unref(conn->input);
	g_object_unref(conn->connection);
	g_free(conn->reply);
	g_free(conn);
	peer->open_connections--;
	peer_quit_when_drained(peer);
}

static void connection_reply_written(GObject *source, GAsyncResult *res,
				     gpointer user_data)
{
	struct connection_info *conn = user_data;
	struct peer *peer = conn->peer;
	gboolean terminate = conn->terminate;
	g_autoptr(GError) error = NULL;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res,
					      NULL, &error)) {
		g_printerr("gio-peer: write failed: %s\n", error->message);
		if (terminate) {
			peer->exit_status = 1;
			connection_free(conn);
			peer_begin_quit(peer);
			return;
		}
		connection_free(conn);
		return;
	}
	g_clear_pointer(&conn->reply, g_free);

	if (terminate) {
		// Like the reference: quit once the counter reached the successor.
		connection_free(conn);
		peer_begin_quit(peer);
		return;
	}
	connection_read_next(conn);
}

static void connection_send(struct connection_info *conn, gchar *reply)
{
	conn->reply = reply;
	g_output_stream_write_all_async(
		g_io_stream_get_output_stream(G_IO_STREAM(conn->connection)),
		conn->reply, strlen(conn->reply), G_PRIORITY_DEFAULT, NULL,
		connection_reply_written, conn);
}

static void connection_handle_line(struct connection_info *conn,
				   const gchar *line)
{
	struct peer *peer = conn->peer;
	g_autoptr(GError) error = NULL;
	gint64 value;

	if (g_str_equal(line, "get_counter")) {
		connection_send(conn, g_strdup_printf("%" G_GINT64_FORMAT "\n",
						      peer->counter));
	} else if (g_str_equal(line, HANDOFF_REQUEST)) {
		if (peer->handing_off) {
			connection_send(conn, g_strdup("error: handoff in progress\n"));
			return;
		}
		peer->handing_off = TRUE;
		g_message("Passing file descriptor for %s to other process",
			  peer->socket_path);
		if (!g_unix_connection_send_fd(G_UNIX_CONNECTION(conn->connection),
					       g_socket_get_fd(peer->listen_socket),
					       NULL, &error)) {
			g_printerr("gio-peer: g_unix_connection_send_fd failed: %s\n",
				   error->message);
			peer->exit_status = 1;
		}
		// Stop accepting, so that clients connecting from now on wait
		// in the socket's backlog for the successor. Unlike the
		// reference (which accepts until it exits and then drops what
		// it accepted), and beyond g_socket_service_stop(): when the
		// listening socket is already readable in this main loop
		// iteration, GSocketListener still accept()s once after the
		// stop and then drops that connection unanswered (its GTask
		// reports G_IO_ERROR_CANCELLED), so close our copy of the
		// listening socket now; the copy in flight keeps it alive.
		g_socket_service_stop(peer->service);
		g_socket_listener_close(G_SOCKET_LISTENER(peer->service));
		g_message("Returning counter to client and terminating the process");
		conn->terminate = TRUE;
		connection_send(conn, g_strdup_printf("%" G_GINT64_FORMAT "\n",
						      peer->counter));
	} else if (g_str_has_prefix(line, SET_COUNTER_PREFIX) &&
		   g_ascii_string_to_signed(line + strlen(SET_COUNTER_PREFIX), 10,
					    G_MININT64 + 1, G_MAXINT64, &value,
					    NULL)) {
		gint64 previous = peer->counter;

		peer->counter = value;
		connection_send(conn, g_strdup_printf("previous value %" G_GINT64_FORMAT "\n",
						      previous));
	} else {
		connection_send(conn, g_strdup("Invalid command\n"));
	}
}

static void connection_line_ready(GObject *source, GAsyncResult *res,
				  gpointer user_data)
{
	struct connection_info *conn = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *line = NULL;
	gsize length = 0;

	line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(source),
						    res, &length, &error);
	if (line == NULL) {
		// EOF (or an incomplete last line) or an error: the client is gone.
		if (error != NULL &&
		    !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
			g_printerr("gio-peer: read failed: %s\n", error->message);
		connection_free(conn);
		return;
	}
	if (length > 0 && line[length - 1] == '\r')
		line[length - 1] = '\0';
	connection_handle_line(conn, line);
}

static void connection_read_next(struct connection_info *conn)
{
	g_data_input_stream_read_line_async(conn->input, G_PRIORITY_DEFAULT,
					    NULL, connection_line_ready, conn);
}

static gboolean incoming_cb(GSocketService *service,
			    GSocketConnection *connection,
			    GObject *source_object, gpointer user_data)
{
	struct peer *peer = user_data;
	struct connection_info *conn = g_new0(struct connection_info, 1);

	(void)service;
	(void)source_object;
	conn->peer = peer;
	conn->connection = g_object_ref(connection);
	conn->input = g_data_input_stream_new(
		g_io_stream_get_input_stream(G_IO_STREAM(connection)));
	g_data_input_stream_set_newline_type(conn->input,
					     G_DATA_STREAM_NEWLINE_TYPE_LF);
	peer->open_connections++;
	connection_read_next(conn);
	return FALSE;
}

// Like the reference: the listening GSocket is private to GSocketListener,
// so grab it from the "event" signal.
static void listener_event_cb(GSocketListener *listener,
			      GSocketListenerEvent event, GSocket *socket,
			      gpointer user_data)
{
	struct peer *peer = user_data;

	(void)listener;
	if (event == G_SOCKET_LISTENER_LISTENED && peer->listen_socket == NULL)
		peer->listen_socket = g_object_ref(socket);
}

static gboolean signal_cb(gpointer user_data)
{
	struct peer *peer = user_data;

	g_main_loop_quit(peer->loop);
	return G_SOURCE_CONTINUE;
}

static void say(const char *format, ...) G_GNUC_PRINTF(1, 2);
static void say(const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vprintf(format, args);
	va_end(args);
	fflush(stdout);
}

static int serve(struct peer *peer, const char *counter_text)
{
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_ascii_string_to_signed(counter_text, 10, G_MININT64 + 1,
				      G_MAXINT64, &peer->counter, &error)) {
		g_printerr("gio-peer: bad START_COUNTER '%s': %s\n",
			   counter_text, error->message);
		return 2;
	}

	peer->service = g_socket_service_new();
	g_signal_connect(G_SOCKET_LISTENER(peer->service), "event",
			 G_CALLBACK(listener_event_cb), peer);
	address = g_unix_socket_address_new(peer->socket_path);
	if (!g_socket_listener_add_address(G_SOCKET_LISTENER(peer->service),
					   address, G_SOCKET_TYPE_STREAM,
					   G_SOCKET_PROTOCOL_DEFAULT, NULL,
					   NULL, &error)) {
		g_printerr("gio-peer: cannot listen on %s: %s\n",
			   peer->socket_path, error->message);
		return 1;
	}
	if (peer->listen_socket == NULL) {
		g_printerr("gio-peer: did not see the listening socket\n");
		return 1;
	}
	g_signal_connect(peer->service, "incoming", G_CALLBACK(incoming_cb),
			 peer);
	g_socket_service_start(peer->service);
	g_message("Listening on UNIX socket %s", peer->socket_path);
	say("ready\n");
	return 0;
}

static int takeover(struct peer *peer)
{
	g_autoptr(GSocketClient) client = NULL;
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GSocketConnection) connection = NULL;
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GError) error = NULL;
	char line[COUNTER_LINE_MAX + 1];
	gsize used = 0;
	int fd;

	client = g_socket_client_new();
	g_socket_client_set_timeout(client, CLIENT_TIMEOUT_S);
	address = g_unix_socket_address_new(peer->socket_path);
	connection = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(address),
					     NULL, &error);
	if (connection == NULL) {
		g_printerr("gio-peer: cannot connect to %s: %s\n",
			   peer->socket_path, error->message);
		return 1;
	}
	if (!G_IS_UNIX_CONNECTION(connection)) {
		g_printerr("gio-peer: not a GUnixConnection\n");
		return 1;
	}
	if (!g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(connection)),
				       HANDOFF_REQUEST "\n",
				       strlen(HANDOFF_REQUEST "\n"), NULL,
				       NULL, &error)) {
		g_printerr("gio-peer: cannot send the request: %s\n",
			   error->message);
		return 1;
	}

	fd = g_unix_connection_receive_fd(G_UNIX_CONNECTION(connection), NULL,
					  &error);
	if (fd < 0) {
		g_printerr("gio-peer: g_unix_connection_receive_fd failed: %s\n",
			   error != NULL ? error->message : "no descriptor");
		return 1;
	}
	g_message("Successfully received file descriptor for %s",
		  peer->socket_path);

	// The counter line follows the descriptor; read it byte by byte.
	while (used < COUNTER_LINE_MAX) {
		gssize n = g_input_stream_read(
			g_io_stream_get_input_stream(G_IO_STREAM(connection)),
			line + used, 1, NULL, &error);
		if (n < 0) {
			g_printerr("gio-peer: cannot read the counter: %s\n",
				   error->message);
			return 1;
		}
		if (n == 0)
			break;
		if (line[used++] == '\n')
			break;
	}
	line[used] = '\0';
	if (used == 0 || line[used - 1] != '\n') {
		g_printerr("gio-peer: expected a counter line, got '%s'\n", line);
		return 1;
	}
	line[used - 1] = '\0';
	if (!g_ascii_string_to_signed(line, 10, G_MININT64 + 1, G_MAXINT64,
				      &peer->counter, &error)) {
		g_printerr("gio-peer: bad counter '%s': %s\n", line,
			   error->message);
		return 1;
	}
	g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
	say("counter %" G_GINT64_FORMAT "\n", peer->counter);

	socket = g_socket_new_from_fd(fd, &error);
	if (socket == NULL) {
		g_printerr("gio-peer: g_socket_new_from_fd failed: %s\n",
			   error->message);
		return 1;
	}
	peer->service = g_socket_service_new();
	if (!g_socket_listener_add_socket(G_SOCKET_LISTENER(peer->service),
					  socket, NULL, &error)) {
		g_printerr("gio-peer: cannot serve the received socket: %s\n",
			   error->message);
		return 1;
	}
	peer->listen_socket = g_steal_pointer(&socket);
	g_signal_connect(peer->service, "incoming", G_CALLBACK(incoming_cb),
			 peer);
	g_socket_service_start(peer->service);
	say("serving\n");
	return 0;
}

static int usage(void)
{
	g_printerr("usage: gio-peer serve SOCKET_PATH START_COUNTER\n"
		   "       gio-peer takeover SOCKET_PATH\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct peer peer = { 0 };
	int status;

	if (argc == 4 && g_str_equal(argv[1], "serve")) {
		peer.socket_path = argv[2];
		status = serve(&peer, argv[3]);
	} else if (argc == 3 && g_str_equal(argv[1], "takeover")) {
		peer.socket_path = argv[2];
		status = takeover(&peer);
	} else {
		return usage();
	}
	if (status != 0)
		return status;

	peer.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, signal_cb, &peer);
	g_unix_signal_add(SIGINT, signal_cb, &peer);
	g_main_loop_run(peer.loop);

	// Close the listening socket without unlinking the path: after a
	// handoff the successor serves it.
	g_socket_service_stop(peer.service);
	g_socket_listener_close(G_SOCKET_LISTENER(peer.service));
	g_clear_object(&peer.listen_socket);
	g_clear_object(&peer.service);
	g_main_loop_unref(peer.loop);
	return peer.exit_status;
}
