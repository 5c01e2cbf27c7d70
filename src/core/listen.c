/* listen: see listen.h. */
#include "aescore/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static bool only(const char *s, size_t n, const char *allowed)
{
    for (size_t i = 0; i < n; i++)
        if (strchr(allowed, s[i]) == NULL || s[i] == '\0')
            return false;
    return true;
}

int listen_parse(const char *text, ListenAddr *out)
{
    const char *host = text, *colon;
    unsigned long port = 0;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');

        if (close == NULL || close == text + 1 || close[1] != ':')
            return -EINVAL;
        host = text + 1;
        n = (size_t) (close - host);
        colon = close + 1;
        if (!only(host, n, "0123456789abcdefABCDEF:.%"))
            return -EINVAL;
        out->bracketed = true;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || colon == text)
            return -EINVAL;
        n = (size_t) (colon - text);
        if (!only(host, n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"))
            return -EINVAL;
    }
    if (n >= sizeof(out->host) || colon[1] == '\0' || strlen(colon + 1) >= sizeof(out->port) ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -EINVAL;
    memcpy(out->host, host, n);
    strcpy(out->port, colon + 1);
    for (const char *p = out->port; *p != '\0'; p++)
        port = port * 10 + (unsigned long) (*p - '0');
    return port <= 65535 ? 0 : -EINVAL;
}

int listen_resolve(const ListenAddr *a, struct sockaddr_storage *ss, socklen_t *len, char *err,
                   size_t err_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int r = getaddrinfo(a->host[0] != '\0' ? a->host : NULL, a->port, &hints, &res);

    if (r != 0) {
        snprintf(err, err_size, "listen address %s%s%s:%s: %s", a->bracketed ? "[" : "", a->host,
                 a->bracketed ? "]" : "", a->port, gai_strerror(r));
        return -EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

bool listen_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return sa->sa_family == AF_UNIX;
}

bool listen_is_loopback(const ListenAddr *a)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    bool loopback;

    if (strcmp(a->host, "localhost") == 0)
        return true;
    if (getaddrinfo(a->host, a->port, &hints, &res) != 0)
        return false;
    loopback = listen_sockaddr_is_loopback(res->ai_addr);
    freeaddrinfo(res);
    return loopback;
}

void listen_format(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) ss;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
    } else {
        snprintf(buf, size, "(socket of family %d)", ss->ss_family);
    }
}
