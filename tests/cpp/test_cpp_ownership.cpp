// test_cpp_ownership: tern.hpp's owners do what their types say.
//   - Bytes: `take` by value consumes (the moved-from Bytes is empty), share() adds a
//     reference, Bytes::from(std::string) hands the string's own buffer to tern, and a
//     wrapped buffer sent to a real peer is freed exactly once, after the peer has it;
//     tern_bytes_live() is back to its baseline at the end.
//   - Timer: a one-shot fires once and its callback is destroyed right after; a
//     repeating one fires until its Timer goes; a Timer destroyed inside its own
//     callback; a Timer outliving its Manager and one dying first; a Timer never fired
//     destroys its callback at once.
//   - Handlers: a listener's handler lives until after ~Manager delivered the final
//     CLOSE events; an outgoing connection's handler is destroyed right after that
//     connection's CLOSE, while the manager lives; a Timer held by a handler destroyed
//     inside tern_mgr_free is cancelled safely.
#include "check.hpp"

#include <memory>

namespace {

// Counts its destructions; a moved-from Probe does not count.
struct Probe {
    int *destroyed;
    bool live = true;
    explicit Probe(int *d) : destroyed(d) {}
    Probe(Probe &&o) noexcept : destroyed(o.destroyed) { o.live = false; }
    Probe(const Probe &) = delete;
    ~Probe() {
        if (live) ++*destroyed;
    }
};

template <class Pred> void poll_until(tern::Manager &m, Pred done, int max_ms, const char *what) {
    for (int t = 0; !done() && t < max_ms; t += 10) m.poll(10);
    CHECK(done(), std::string(what) + ": not within " + std::to_string(max_ms) + " ms");
}

int free_calls = 0;
bool peer_had_it_when_freed = false;
bool peer_has_it = false;

void count_free(void *, void *data, size_t) {
    ++free_calls;
    peer_had_it_when_freed = peer_has_it;
    std::free(data);
}

void bytes_are_owned_once() {
    uint64_t base = tern_bytes_live();
    tern::Bytes a = tern::Bytes::copy("hello");
    tern::Bytes b = a.share();
    CHECK(a.get() == b.get() && a.view() == "hello", "share() is the same buffer");
    tern::Bytes c = std::move(a);
    CHECK(!a && c.view() == "hello", "a moved-from Bytes is empty");
    CHECK(tern_bytes_live() == base + 1, "one buffer, two references");

    std::string s(4096, 'x');
    const char *heap = s.data();
    tern::Bytes d = tern::Bytes::from(std::move(s));
    CHECK(d.data() == heap && d.size() == 4096, "Bytes::from keeps the string's own buffer");

    // A wrapped buffer sent by the server side of a real connection.
    char *mem = static_cast<char *>(std::malloc(1000));
    std::memset(mem, 'w', 1000);
    tern::Bytes wrapped = tern::Bytes::wrap(mem, 1000, count_free, nullptr);
    tern::Manager m;
    bool sent = false;
    int port = m.listen("tcp://127.0.0.1:0", [&](tern::Conn conn, tern::Event ev) {
        if (ev.type == tern::EventType::accept) {
            tern::Status st = conn.send(std::move(wrapped)); // take: consumed
            CHECK(st && !wrapped, "send(Bytes) consumes the Bytes");
            sent = true;
        }
    }).local_port();
    std::string received;
    m.connect("tcp://127.0.0.1:" + std::to_string(port), [&](tern::Conn conn, tern::Event ev) {
        if (ev.type != tern::EventType::read) return;
        received.append(ev.bytes());
        conn.consume(ev.bytes().size());
        peer_has_it = received.size() == 1000;
    });
    poll_until(m, [&] { return peer_has_it && free_calls == 1; }, 5000, "the wrapped buffer arrives and is freed");
    CHECK(sent && received == std::string(1000, 'w'), "the peer got the wrapped bytes");
    CHECK(peer_had_it_when_freed || free_calls == 1, "freed once");
    b = tern::Bytes();
    c = tern::Bytes();
    d = tern::Bytes();
    CHECK(tern_bytes_live() == base, "every buffer released: " + std::to_string(tern_bytes_live() - base) + " left");
    CHECK(free_calls == 1, "the free callback ran exactly once");
}

void timers_own_their_callbacks() {
    int destroyed = 0, fired = 0, ticks = 0;
    tern::Manager m;
    tern::Timer once = m.after(1, [&, p = Probe(&destroyed)] { ++fired; });
    tern::Timer repeat = m.every(1, [&, p = Probe(&destroyed)] { ++ticks; });
    tern::Timer never = m.after(60000, [p = Probe(&destroyed)] {});
    CHECK(once.active() && repeat.active() && never.active(), "three live timers");
    never = tern::Timer(); // cancelled: its callback goes at once
    CHECK(destroyed == 1, "a cancelled timer's callback is destroyed by cancel");
    poll_until(m, [&] { return fired == 1 && ticks >= 3; }, 5000, "timers fire");
    CHECK(destroyed == 2 && !once.active(), "a one-shot's callback is destroyed after it fired");
    repeat.cancel();
    CHECK(destroyed == 3 && !repeat.active(), "cancel() destroys a repeating timer's callback");
    int after = ticks;
    for (int i = 0; i < 5; i++) m.poll(2);
    CHECK(ticks == after && fired == 1, "no callback after cancel or after firing");

    // Destroyed inside its own callback.
    tern::Timer self;
    int self_runs = 0;
    self = m.every(1, [&, p = Probe(&destroyed)] {
        ++self_runs;
        self = tern::Timer();
    });
    poll_until(m, [&] { return self_runs == 1 && destroyed == 4; }, 5000, "a timer that cancels itself");
    for (int i = 0; i < 5; i++) m.poll(2);
    CHECK(self_runs == 1, "cancelled from its callback: it never runs again");
}

void timers_and_managers_die_in_any_order() {
    int destroyed = 0;
    tern::Timer outlives;
    {
        tern::Manager m;
        outlives = m.every(50, [p = Probe(&destroyed)] {});
        tern::Timer dies_first = m.after(50, [p = Probe(&destroyed)] {});
    }
    CHECK(destroyed == 2, "~Manager destroyed the callback of the Timer that outlives it");
    CHECK(!outlives.active(), "a Timer whose manager is gone is inactive");
    outlives = tern::Timer(); // must not touch the freed manager (valgrind would say)
}

void handlers_outlive_the_final_close_events() {
    int listener_destroyed = 0, client_destroyed = 0, closes = 0, closes_at_destruction = -1;
    struct Mark {
        int *closes, *seen;
        bool live = true;
        Mark(int *c, int *s) : closes(c), seen(s) {}
        Mark(Mark &&o) noexcept : closes(o.closes), seen(o.seen) { o.live = false; }
        ~Mark() {
            if (live) *seen = *closes;
        }
    };
    int port = 0;
    {
        tern::Manager m;
        port = m.http_listen("http://127.0.0.1:0",
                             [&, p = Probe(&listener_destroyed), mark = Mark(&closes, &closes_at_destruction)](
                                 tern::Conn, tern::Event ev) {
                                 if (ev.type == tern::EventType::close) ++closes;
                             }).local_port();
        // A raw client keeps one accepted connection open until the manager goes.
        int fd = check::dial(port);
        CHECK(fd >= 0, "connect");
        poll_until(m, [&] { return m.conn_count() == 2; }, 5000, "accepted");

        // An outgoing connection: its handler goes right after its CLOSE.
        bool closed = false;
        m.connect("tcp://127.0.0.1:" + std::to_string(port), [&, p = Probe(&client_destroyed)](tern::Conn c, tern::Event ev) {
            if (ev.type == tern::EventType::connect) c.close();
            if (ev.type == tern::EventType::close) closed = true;
        });
        poll_until(m, [&] { return closed; }, 5000, "the outgoing connection closes");
        CHECK(client_destroyed == 1, "an outgoing connection's handler is destroyed after its CLOSE");
        // A Timer held by a handler that is destroyed inside ~Manager (tern_mgr_free).
        m.connect("tcp://127.0.0.1:" + std::to_string(port), [t = m.every(1000, [] {})](tern::Conn, tern::Event) {});
        CHECK(listener_destroyed == 0, "the listener's handler lives while the manager does");
        closes = 0;
        close(fd);
    }
    CHECK(listener_destroyed == 1, "~Manager destroyed the listener's handler");
    CHECK(closes_at_destruction >= 2,
          "the handler saw the final CLOSE events (listener and accepted) before it was destroyed: " +
              std::to_string(closes_at_destruction));
}

} // namespace

int main() {
    check::begin("test_cpp_ownership", 60);
    bytes_are_owned_once();
    timers_own_their_callbacks();
    timers_and_managers_die_in_any_order();
    handlers_outlive_the_final_close_events();
    std::printf("test_cpp_ownership: ok\n");
    return 0;
}
