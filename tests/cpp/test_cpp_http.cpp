// test_cpp_http: a C++ server through tern.hpp, with raw socket clients on 127.0.0.1.
//   - lambdas as handlers cost no allocation per event: 2,000 keep-alive requests
//     answered inline (reply with a string_view) while operator new is counted (the
//     client thread allocates nothing either): zero allocations;
//   - deferred answers from a worker std::thread through a Remote (Conn::defer,
//     Remote::respond with Bytes::from(std::string)), in order on one keep-alive
//     connection, with `Connection: close` honoured after the deferred answer;
//   - Remote::publish from the worker reaches a tern WebSocket client on the same loop;
//   - everything ends: connections back to the listener alone, buffers back to baseline.
#include "check.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <thread>

namespace {

std::atomic<bool> counting{false};
std::atomic<long> allocations{0};

} // namespace

// Every C++ allocation in the process while `counting` is set. (Rust's allocations go
// to malloc directly and are not counted: this is about tern.hpp.)
void *operator new(std::size_t n) {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
    if (void *p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }

namespace {

// A worker with a queue of tokens, answering each through its own Remote.
struct Worker {
    tern::Remote remote;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<tern::Token, std::string>> jobs;
    bool stop = false;
    std::thread thread;

    explicit Worker(tern::Remote r) : remote(std::move(r)), thread([this] { run(); }) {}
    ~Worker() {
        {
            std::lock_guard<std::mutex> g(mu);
            stop = true;
        }
        cv.notify_one();
        thread.join();
    }
    void push(tern::Token t, std::string what) {
        std::lock_guard<std::mutex> g(mu);
        jobs.emplace_back(t, std::move(what));
        cv.notify_one();
    }
    void run() {
        for (;;) {
            std::unique_lock<std::mutex> g(mu);
            cv.wait(g, [&] { return stop || !jobs.empty(); });
            if (stop) return;
            auto [t, what] = std::move(jobs.front());
            jobs.pop_front();
            g.unlock();
            if (what == "publish") {
                CHECK(remote.publish("news", TERN_WS_TEXT, tern::Bytes::copy("from the worker")), "publish");
            }
            std::string body = "worker:" + what;
            tern::Status st = remote.respond(t, 200, "Content-Type: text/plain\r\n", tern::Bytes::from(std::move(body)));
            CHECK(st, std::string("respond: ") + st.what());
        }
    }
};

template <class Pred> void poll_until(tern::Manager &m, Pred done, int max_ms, const char *what) {
    for (int t = 0; !done() && t < max_ms; t += 5) m.poll(5);
    CHECK(done(), std::string(what) + ": not within " + std::to_string(max_ms) + " ms");
}

void serve(tern::Manager &m, Worker &w, int *port) {
    *port = m.http_listen("http://127.0.0.1:0", [&w](tern::Conn c, tern::Event ev) {
        if (ev.type == tern::EventType::ws_open) c.subscribe("news");
        if (ev.type != tern::EventType::http_msg) return;
        tern::HttpMsg h = ev.http();
        if (h.uri() == "/now") {
            c.reply(200, "Content-Type: text/plain\r\n", "now");
        } else if (h.uri() == "/ws") {
            c.ws_upgrade(h);
        } else {
            w.push(c.defer(h), std::string(h.uri().substr(1)));
        }
    }).local_port();
}

// 2,000 inline answers on one keep-alive connection, from a client thread that only
// uses stack buffers, while allocations are counted.
void no_allocation_per_event(tern::Manager &m, int port) {
    int n = check::small() ? 200 : 2000;
    int fd = check::dial(port);
    CHECK(fd >= 0, "connect");
    std::atomic<int> answered{0};
    std::atomic<bool> warm{false};
    std::thread client([&] {
        char buf[4096];
        const char req[] = "GET /now HTTP/1.1\r\nHost: x\r\n\r\n";
        for (int i = 0; i < n + 50; i++) {
            if (i == 50) warm = true; /* the first requests warm tern's pools */
            CHECK(check::send_all(fd, std::string_view(req, sizeof req - 1)), "send");
            std::string_view body;
            CHECK(check::read_response(fd, buf, sizeof buf, &body) == 200 && body == "now", "answer");
            if (i >= 50) answered.fetch_add(1);
        }
    });
    poll_until(m, [&] { return warm.load(); }, 10000, "warm-up");
    counting = true;
    poll_until(m, [&] { return answered.load() == n; }, 60000, "inline answers");
    counting = false;
    client.join();
    close(fd);
    CHECK(allocations.load() == 0, std::to_string(allocations.load()) + " C++ allocations in " + std::to_string(n) +
                                       " requests: a handler call must not allocate");
}

// Three pipelined requests, the middle one inline, the others deferred to the worker;
// the last says Connection: close. Answers come in order, then the close.
void deferred_answers_keep_their_place(tern::Manager &m, int port) {
    int fd = check::dial(port);
    CHECK(fd >= 0, "connect");
    CHECK(check::send_all(fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /now HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
          "send");
    std::atomic<bool> done{false};
    std::string got;
    std::thread client([&] {
        // Everything until the server closes, then the three answers out of it.
        std::string all;
        char buf[8192];
        for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, static_cast<size_t>(n));
        for (size_t at = 0, i = 0; i < 3; i++) {
            size_t head = all.find("\r\n\r\n", at);
            size_t cl = all.find("Content-Length: ", at);
            CHECK(head != std::string::npos && cl < head && all.compare(at, 12, "HTTP/1.1 200") == 0,
                  "answer " + std::to_string(i) + " in: " + all);
            size_t len = std::stoul(all.substr(cl + 16));
            got += all.substr(head + 4, len) + ";";
            at = head + 4 + len;
        }
        done = true;
    });
    poll_until(m, [&] { return done.load(); }, 20000, "deferred answers");
    client.join();
    close(fd);
    CHECK(got == "worker:one;now;worker:three;", "in order: " + got);
}

// The worker publishes to a topic that a tern WebSocket client on the same loop joined.
void remote_publish_reaches_subscribers(tern::Manager &m, Worker &w, int port) {
    std::string heard;
    bool answered = false;
    m.ws_connect("ws://127.0.0.1:" + std::to_string(port) + "/ws", [&](tern::Conn c, tern::Event ev) {
        if (ev.type == tern::EventType::ws_msg) {
            heard = std::string(ev.ws().data);
            c.ws_close(1000);
        }
    });
    // Both sides of the WebSocket are up (the server side subscribed on its WS_OPEN).
    poll_until(m, [&] { return m.conn_count() == 3; }, 5000, "the WebSocket pair");
    for (int i = 0; i < 20; i++) m.poll(5);
    int fd = check::dial(port);
    CHECK(check::send_all(fd, "GET /publish HTTP/1.1\r\nHost: x\r\n\r\n"), "send");
    std::thread client([&] {
        char buf[4096];
        std::string_view body;
        CHECK(check::read_response(fd, buf, sizeof buf, &body) == 200 && body == "worker:publish", "answer");
        answered = true;
    });
    poll_until(m, [&] { return heard == "from the worker" && answered; }, 10000, "the published message");
    client.join();
    close(fd);
    (void)w;
}

} // namespace

int main() {
    check::begin("test_cpp_http", 90);
    uint64_t base = tern_bytes_live();
    {
        tern::Manager m;
        Worker w(m.remote());
        int port = 0;
        serve(m, w, &port);
        no_allocation_per_event(m, port);
        deferred_answers_keep_their_place(m, port);
        remote_publish_reaches_subscribers(m, w, port);
        poll_until(m, [&] { return m.conn_count() == 1; }, 10000, "every connection ends");
    }
    CHECK(tern_bytes_live() == base, "buffers back to the baseline");
    std::printf("test_cpp_http: ok\n");
    return 0;
}
