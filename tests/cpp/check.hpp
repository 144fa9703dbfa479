// Shared helpers of the C++ tests (tests/cpp/test_*.cpp): failing with a message, a
// hard deadline, the scale (TERN_TEST_SCALE=small under valgrind), and a blocking
// client on raw POSIX sockets for 127.0.0.1 (a peer that is not tern).
#ifndef TERN_TEST_CHECK_HPP
#define TERN_TEST_CHECK_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "tern.hpp"

namespace check {

inline const char *name = "cpp-test";

[[noreturn]] inline void fail(const char *file, int line, const std::string &msg) {
    std::fprintf(stderr, "%s: FAIL (%s:%d): %s\n", name, file, line, msg.c_str());
    std::fflush(stderr);
    _exit(1);
}

#define CHECK(cond, msg)                                                                  \
    do {                                                                                  \
        if (!(cond)) check::fail(__FILE__, __LINE__, std::string("check failed: ") + #cond + ": " + (msg)); \
    } while (0)

inline bool small() {
    const char *s = std::getenv("TERN_TEST_SCALE");
    return s && std::strcmp(s, "small") == 0;
}

// Names the test and arms a deadline (four times longer under valgrind).
inline void begin(const char *test_name, unsigned seconds) {
    name = test_name;
    std::signal(SIGALRM, [](int) {
        const char msg[] = "deadline passed\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(3);
    });
    alarm(small() ? seconds * 4 : seconds);
}

// A blocking TCP client to 127.0.0.1:port with a receive timeout; -1 on failure.
inline int dial(int port, int timeout_s = 10) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

inline bool send_all(int fd, std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// Reads one HTTP response with a Content-Length body into a caller's buffer (no
// allocation: the no-allocation test calls it); returns the status, 0 on EOF or error.
inline int read_response(int fd, char *buf, size_t cap, std::string_view *body) {
    size_t have = 0;
    const char *end = nullptr;
    while (end == nullptr) {
        if (have == cap) return 0;
        ssize_t n = recv(fd, buf + have, cap - have, 0);
        if (n <= 0) return 0;
        have += static_cast<size_t>(n);
        end = static_cast<const char *>(memmem(buf, have, "\r\n\r\n", 4));
    }
    size_t head = static_cast<size_t>(end - buf) + 4;
    const char *cl = static_cast<const char *>(memmem(buf, head, "Content-Length: ", 16));
    size_t len = cl ? std::strtoul(cl + 16, nullptr, 10) : 0;
    while (have < head + len) {
        if (have == cap) return 0;
        ssize_t n = recv(fd, buf + have, cap - have, 0);
        if (n <= 0) return 0;
        have += static_cast<size_t>(n);
    }
    if (body) *body = std::string_view(buf + head, len);
    return std::atoi(buf + 9);
}

// Whether the peer closes the connection (EOF) before `timeout_s`, reading nothing.
inline bool closed_without_data(int fd) {
    char b;
    return recv(fd, &b, 1, 0) == 0;
}

} // namespace check

#endif
