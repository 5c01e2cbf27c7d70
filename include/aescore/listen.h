/* listen: the one reader of listen addresses, "HOST:PORT" or "[IPV6]:PORT".
 *
 * The config checks the shape at file:line (listen_parse), the daemon decides whether the
 * address is loopback (listen_is_loopback) and the HTTP server binds it (listen_resolve):
 * all three read the text the same way. HOST is a name or IPv4 address of the characters
 * [A-Za-z0-9.-], or an IPv6 address in brackets; PORT is 0..65535 (0: any free port).
 * Threads: reentrant (listen_resolve calls getaddrinfo, which is).
 * Errors: 0 or -EINVAL (the address has another shape, or does not resolve: err says which).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct ListenAddr {
    char host[256]; /* brackets removed */
    char port[6];
    bool bracketed; /* written as [IPV6] */
} ListenAddr;

/* Splits text into *out; -EINVAL when it is not one of the two shapes. */
int listen_parse(const char *text, ListenAddr *out);

/* The socket address to bind (numeric ports, passive). */
int listen_resolve(const ListenAddr *a, struct sockaddr_storage *ss, socklen_t *len, char *err,
                   size_t err_size);

/* Whether the address is loopback: numeric addresses exactly, and of names only
 * "localhost", so that a DNS answer can never widen what is exposed. */
bool listen_is_loopback(const ListenAddr *a);

/* Whether a bound or inherited socket's address is loopback (AF_UNIX counts). */
bool listen_sockaddr_is_loopback(const struct sockaddr *sa);

/* "HOST:PORT" or "[V6]:PORT" of a socket address, as logs announce it. */
void listen_format(const struct sockaddr_storage *ss, char *buf, size_t size);
