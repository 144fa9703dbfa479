// The C++ twin of main.c: a program outside the tern tree using only the installed
// tern.hpp and library. A timer starts the client, a lambda server echoes, the client
// checks the bytes, and everything is freed by the owners' destructors. Exit 0 on success.
// Built against the shared and the static library and through pkg-config by
// tests/packaging/consumer_*.cmake, and by tests/subdirectory.
#include <tern.hpp>

#include <cstdio>
#include <string>

int main() {
    const std::string expected = std::to_string(TERN_VERSION_MAJOR) + "." + std::to_string(TERN_VERSION_MINOR) + "." +
                                 std::to_string(TERN_VERSION_PATCH);
    if (tern::version() != expected) {
        std::fprintf(stderr, "consumer_cpp: tern::version() is %s, the header says %s\n",
                     std::string(tern::version()).c_str(), expected.c_str());
        return 1;
    }
    const std::string message = "hello from a C++ tern consumer";
    std::string received;
    bool failed = false;
    try {
        tern::Manager mgr;
        int port = mgr.listen("tcp://127.0.0.1:0", [](tern::Conn c, tern::Event ev) {
            if (ev.type == tern::EventType::read) {
                c.send(ev.bytes());
                c.consume(ev.bytes().size());
            }
        }).local_port();
        tern::Timer start = mgr.after(1, [&] {
            mgr.connect("tcp://127.0.0.1:" + std::to_string(port), [&](tern::Conn c, tern::Event ev) {
                if (ev.type == tern::EventType::connect) c.send(tern::Bytes::copy(message));
                if (ev.type == tern::EventType::read) {
                    received.append(ev.bytes());
                    c.consume(ev.bytes().size());
                    if (received.size() >= message.size()) c.close();
                }
                if (ev.type == tern::EventType::error) failed = true;
            });
        });
        for (int i = 0; i < 1000 && received.size() < message.size() && !failed; i++) mgr.poll(10);
    } catch (const tern::Error &e) {
        std::fprintf(stderr, "consumer_cpp: %s\n", e.what());
        return 1;
    }
    if (failed || received != message) {
        std::fprintf(stderr, "consumer_cpp: echo round trip failed (got \"%s\")\n", received.c_str());
        return 1;
    }
    std::printf("consumer_cpp: tern %s, echo round trip through tern.hpp ok\n", expected.c_str());
    return 0;
}
