/* floor: the raw epoll floor for bench/http.sh (BENCH.md).
 *
 *   usage: floor [PORT]       (default 8000, on 127.0.0.1)
 *
 * The least an HTTP keep-alive server can do per request: every time a connection is
 * readable, one recv() and one send() of a fixed "hello\n" response. It parses nothing,
 * so it is only correct for clients that send one whole request at a time and wait for
 * the answer (wrk without pipelining). What tern spends per request above this is the
 * price of being a real server; BENCH.md's target is at most 1.05x.
 *
 * One thread, level-triggered epoll, non-blocking sockets, TCP_NODELAY like the servers
 * it is compared with. Runs until SIGINT or SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 6\r\n"
                               "\r\n"
                               "hello\n";

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Accept everything pending; each new connection is watched for input. */
static void accept_all(int ep, int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or an error that costs only that connection */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) close(fd);
    }
}

/* One recv, one send. End of stream, an error or a short send closes the connection
 * (close() also removes it from the epoll set). */
static void serve(int fd) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0 || send(fd, RESPONSE, sizeof RESPONSE - 1, MSG_NOSIGNAL) != (ssize_t)sizeof RESPONSE - 1)
        close(fd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8000;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int lfd = listen_on(port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        fprintf(stderr, "floor: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    printf("floor: epoll HTTP floor on 127.0.0.1:%d\n", port);
    fflush(stdout);

    struct epoll_event evs[256];
    while (!stop_requested) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == lfd)
                accept_all(ep, lfd);
            else
                serve(evs[i].data.fd);
        }
    }
    return 0;
}
