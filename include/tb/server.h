/*
 * server.h - the libwebsockets adapter: WebSocket API and HTTP endpoints on one port.
 *
 * Threads: tb_server_run() runs the lws service loop on the CALLING thread until a stop
 * is requested; every lws call happens on that thread. tb_server_request_stop() is the
 * only function safe to call from other threads (it sets a flag and calls
 * lws_cancel_service()).
 *
 * The server reads collector results from the mailbox (woken by lws_cancel_service),
 * serializes each message once per distinct subscription set, and writes shared,
 * refcounted frames to every client (docs/protocol.md is the contract).
 */
#ifndef TB_SERVER_H
#define TB_SERVER_H

#include <stddef.h>

#include "tb/config.h"
#include "tb/mailbox.h"

struct tb_server;

/* Creates the lws context and binds the listener. Borrows @cfg and @mb. Sets the
 * mailbox's wake function. Returns 0 or -errno with @err. */
int tb_server_new(const struct tb_config *cfg, struct tb_mailbox *mb, struct tb_server **out,
                  char *err, size_t errlen);

/* The port actually bound (useful with server.port = 0). */
int tb_server_port(const struct tb_server *s);

/* Service loop; returns 0 after a graceful stop (close 1001 sent to every client, or
 * server.shutdown_timeout_ms elapsed). */
int tb_server_run(struct tb_server *s);

void tb_server_request_stop(struct tb_server *s); /* thread-safe */
void tb_server_free(struct tb_server *s);         /* NULL is a no-op */

#endif
