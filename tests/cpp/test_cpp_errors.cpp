// test_cpp_errors: tern.hpp's error rules.
//   - creating fails with tern::Error: a taken port (code TERN_EADDRINUSE, errno
//     EADDRINUSE, the call named in what()), a bad URL (TERN_EINVAL), a bad timer;
//   - acting fails with a Status: tern_send on an HTTP connection is TERN_EPROTO, a
//     second answer TERN_EPROTO, remotes after the manager TERN_ECLOSED (with the
//     function of Remote::call destroyed, never run);
//   - an exception never reaches tern: a handler that throws (a std::exception, then
//     an int) has it logged and its connection closed at once (the client sees EOF,
//     no answer), and the server goes on serving; a throwing timer is logged and keeps
//     repeating; a throwing Remote::call function is logged.
#include "check.hpp"

#include <cerrno>
#include <thread>
#include <vector>

namespace {

std::vector<std::string> logged;

void remember(const char *line) { logged.push_back(line); }

bool logged_has(const std::string &what) {
    for (auto &l : logged)
        if (l.find(what) != std::string::npos) return true;
    return false;
}

template <class Pred> void poll_until(tern::Manager &m, Pred done, int max_ms, const char *what) {
    for (int t = 0; !done() && t < max_ms; t += 5) m.poll(5);
    CHECK(done(), std::string(what) + ": not within " + std::to_string(max_ms) + " ms");
}

void creating_throws(tern::Manager &m, int port) {
    try {
        m.http_listen("http://127.0.0.1:" + std::to_string(port), [](tern::Conn, tern::Event) {});
        CHECK(false, "listening on a taken port must throw");
    } catch (const tern::Error &e) {
        CHECK(e.code() == TERN_EADDRINUSE && e.os_error() == EADDRINUSE, e.what());
        CHECK(std::string(e.what()).find("tern_http_listen") == 0, e.what());
    }
    try {
        m.connect("not a url", [](tern::Conn, tern::Event) {});
        CHECK(false, "a bad URL must throw");
    } catch (const tern::Error &e) {
        CHECK(e.code() == TERN_EINVAL, e.what());
    }
    try {
        tern::Timer t = m.timer(1, 0x100, [] {});
        CHECK(false, "unknown timer flags must throw");
    } catch (const tern::Error &e) {
        CHECK(e.code() == TERN_EINVAL, e.what());
    }
}

// One request whose handler throws: no answer, the connection is closed at once.
void expect_closed_without_answer(tern::Manager &m, int port, const char *path) {
    int fd = check::dial(port);
    CHECK(fd >= 0, "connect");
    std::string req = std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(check::send_all(fd, req), "send");
    bool closed = false;
    std::thread client([&] { closed = check::closed_without_data(fd); });
    for (int i = 0; i < 200 && !closed; i++) m.poll(5);
    client.join();
    close(fd);
    CHECK(closed, std::string("a throwing handler's connection is closed without an answer: ") + path);
}

void expect_answer(tern::Manager &m, int port, const char *path, const char *body) {
    int fd = check::dial(port);
    CHECK(fd >= 0, "connect");
    std::string req = std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n"; /* keep-alive: a second answer is refused, not closed */
    CHECK(check::send_all(fd, req), "send");
    std::string_view got;
    int status = 0;
    char buf[4096];
    std::thread client([&] { status = check::read_response(fd, buf, sizeof buf, &got); });
    for (int i = 0; i < 400 && status == 0; i++) m.poll(5);
    client.join();
    close(fd);
    CHECK(status == 200 && got == body, std::string("the server still answers ") + path);
}

} // namespace

int main() {
    check::begin("test_cpp_errors", 60);
    tern::set_exception_log(remember);
    tern::Remote outlives;
    bool called = false;
    int destroyed = 0;
    {
        tern::Manager m;
        tern::Status second(TERN_OK), raw(TERN_OK);
        int port = m.http_listen("http://127.0.0.1:0", [&](tern::Conn c, tern::Event ev) {
            if (ev.type != tern::EventType::http_msg) return;
            std::string_view uri = ev.http().uri();
            if (uri == "/throw") throw std::runtime_error("handler failed on purpose");
            if (uri == "/int") throw 42;
            raw = c.send("raw bytes on HTTP");
            c.reply(200, nullptr, "fine");
            second = c.reply(200, nullptr, "again");
        }).local_port();

        creating_throws(m, port);
        expect_closed_without_answer(m, port, "/throw");
        CHECK(logged_has("handler failed on purpose") && logged_has("closing connection"),
              "the exception and the close are logged");
        expect_closed_without_answer(m, port, "/int");
        CHECK(logged_has("not a std::exception"), "a non-std exception is logged too");
        expect_answer(m, port, "/ok", "fine");
        CHECK(raw == TERN_EPROTO, std::string("tern_send on HTTP: ") + raw.what());
        CHECK(second == TERN_EPROTO && !second, std::string("a second answer: ") + second.what());

        int ticks = 0;
        tern::Timer t = m.every(1, [&] {
            ++ticks;
            throw std::runtime_error("timer failed on purpose");
        });
        poll_until(m, [&] { return ticks >= 3; }, 5000, "a throwing timer keeps repeating");
        CHECK(logged_has("timer failed on purpose"), "the timer's exception is logged");

        tern::Remote r = m.remote();
        bool ran = false;
        CHECK(r.call([&] {
            ran = true;
            throw std::runtime_error("call failed on purpose");
        }),
              "call posted");
        poll_until(m, [&] { return ran; }, 5000, "a remote call runs");
        CHECK(logged_has("call failed on purpose"), "the call's exception is logged");
        outlives = r.clone();
        poll_until(m, [&] { return m.conn_count() == 1; }, 5000, "connections end");
    }
    struct Probe {
        int *d;
        bool live = true;
        explicit Probe(int *p) : d(p) {}
        Probe(Probe &&o) noexcept : d(o.d) { o.live = false; }
        ~Probe() {
            if (live) ++*d;
        }
    };
    tern::Status late = outlives.call([&called, p = Probe(&destroyed)] { called = true; });
    CHECK(late == TERN_ECLOSED, std::string("a remote after its manager: ") + late.what());
    CHECK(!called && destroyed == 1, "a call that was not posted is destroyed, never run");
    CHECK(outlives.send(1, tern::Bytes::copy("x")) == TERN_ECLOSED, "send after the manager");
    std::printf("test_cpp_errors: ok (%zu lines logged)\n", logged.size());
    return 0;
}
