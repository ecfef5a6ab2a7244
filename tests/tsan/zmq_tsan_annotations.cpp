// ThreadSanitizer builds only (cmake/sanitizers.cmake links every program
// with -Wl,--wrap for the functions below): tells TSan that a ZeroMQ message
// handed from one thread to another is a synchronisation.
//
// Why: Debian's libzmq is not built with TSan, so the lock-free pipe that
// carries a message over inproc is invisible to it. A frame our code fills
// in one thread (a message_t built from our bytes, sent with zmq_msg_send)
// and parses in another can then look like a data race, with both accesses
// in our code, which no suppression could name without hiding real races
// there too. TSan does see libzmq's eventfd read and write when a sleeping
// receiver is woken, which orders most hand-offs already (docs/SANITIZERS.md:
// the run without these wrappers); not those to a receiver too busy to sleep.
//
// What: every send releases one shared sync object before the message leaves;
// every receive that returned a message acquires it. A receive therefore
// happens after every send that came before it in any thread. That is more
// order than ZeroMQ guarantees (only the sender of this message), so TSan may
// miss a race between two threads that also talk over ZeroMQ; it reports no
// false ones. The calls are in our objects because cppzmq is header-only
// (`nm -u` on them lists zmq_send, zmq_msg_send and zmq_msg_recv; zmq_recv
// is wrapped too so that a future use of it is covered).
#include <cstddef>

#include <zmq.h>

extern "C" {
void __tsan_acquire(void* address);
void __tsan_release(void* address);

int __real_zmq_send(void* socket, const void* buffer, std::size_t length, int flags);
int __real_zmq_recv(void* socket, void* buffer, std::size_t length, int flags);
int __real_zmq_msg_send(zmq_msg_t* message, void* socket, int flags);
int __real_zmq_msg_recv(zmq_msg_t* message, void* socket, int flags);
}

namespace {
char handed_over;  // only its address matters: the one sync object of every hand-off
}

extern "C" {

int __wrap_zmq_send(void* socket, const void* buffer, std::size_t length, int flags) {
  __tsan_release(&handed_over);
  return __real_zmq_send(socket, buffer, length, flags);
}

int __wrap_zmq_msg_send(zmq_msg_t* message, void* socket, int flags) {
  __tsan_release(&handed_over);
  return __real_zmq_msg_send(message, socket, flags);
}

int __wrap_zmq_recv(void* socket, void* buffer, std::size_t length, int flags) {
  const int received = __real_zmq_recv(socket, buffer, length, flags);
  if (received >= 0) __tsan_acquire(&handed_over);
  return received;
}

int __wrap_zmq_msg_recv(zmq_msg_t* message, void* socket, int flags) {
  const int received = __real_zmq_msg_recv(message, socket, flags);
  if (received >= 0) __tsan_acquire(&handed_over);
  return received;
}

}  // extern "C"
