/* http_server: libmicrohttpd lifecycle, options, route table, 404/405/HEAD.
 *
 * Serves the HTTP contract of DESIGN.md section 3 on a pool of epoll threads. Reaches models
 * only through the ModelSlot and training only through the Trainer's entry points and status.
 * Threads: new/stop/free from the main thread only; requests run on the pool.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "aescore/config.h"
#include "aescore/model_slot.h"
#include "aescore/trainer.h"
#include "aescore/recent.h"
#include "aescore/watcher.h"

typedef struct HttpServer HttpServer;

/* Starts serving. listen_fd >= 0: an already bound, listening socket (systemd socket
 * activation), else bind config->listen. config (which passed config_check) must outlive
 * the server; watcher is NULL without follow mode, and when given outlives the server too
 * (its status feeds /health and /metrics); recent (may be NULL) keeps what is scored for
 * the promotion gate and outlives the server. Returns 0, or -errno with a message in err. */
int http_server_new(HttpServer **out, const Config *config, ModelSlot *slot, Trainer *trainer,
                    Watcher *watcher, Recent *recent, int listen_fd, char *err, size_t err_size);

/* The bound port (to learn an ephemeral one). */
uint16_t http_server_port(const HttpServer *s);

/* From now on /health answers 503 stopping and a new connection is closed as it is
 * accepted (the main thread calls it on SIGTERM). */
void http_server_set_stopping(HttpServer *s);

/* Stopping as above, lets in-flight requests finish, closes the listen socket, frees.
 * Accepts NULL; returns NULL. */
HttpServer *http_server_free(HttpServer *s);
