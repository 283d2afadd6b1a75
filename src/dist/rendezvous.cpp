#include "dist/rendezvous.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "dist/communicator.h"

namespace ponder::dist {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kHello = "ponder-rendezvous-1";

// Closes the socket when it goes out of scope.
class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

int ms_left(Clock::time_point deadline) {
  return int(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
}

void send_all(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    PONDER_CHECK(n > 0, CommError, "rendezvous: the connection closed while sending");
    sent += size_t(n);
  }
}

// Tells a peer why it is turned away; a peer already gone does not matter.
void refuse(int fd, const std::string& why) {
  ::send(fd, ("refused: " + why + "\n").data(), why.size() + 10, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// One line (without its newline), or the `n` bytes that follow it.
std::string receive(int fd, Clock::time_point deadline, const char* waiting_for, size_t n = 0) {
  std::string out;
  char c;
  while (n == 0 ? out.empty() || out.back() != '\n' : out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    PONDER_CHECK(::poll(&p, 1, ms_left(deadline)) > 0, CommError, "rendezvous: timed out waiting for ", waiting_for);
    PONDER_CHECK(::recv(fd, &c, 1, 0) == 1, CommError, "rendezvous: the connection closed while waiting for ", waiting_for);
    out.push_back(c);
  }
  if (n == 0) out.pop_back();
  return out;
}

// Every interface, IPv6 and IPv4 where the host has IPv6, else IPv4 only.
Socket listen_on(int port) {
  const int yes = 1, no = 0;
  Socket v6(::socket(AF_INET6, SOCK_STREAM, 0));
  if (v6.fd() >= 0) {
    ::setsockopt(v6.fd(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    ::setsockopt(v6.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_any;
    addr.sin6_port = htons(uint16_t(port));
    if (::bind(v6.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(v6.fd(), 128) == 0) return v6;
  }
  Socket v4(::socket(AF_INET, SOCK_STREAM, 0));
  PONDER_CHECK(v4.fd() >= 0, CommError, "rendezvous: cannot create a socket");
  ::setsockopt(v4.fd(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(uint16_t(port));
  PONDER_CHECK(::bind(v4.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(v4.fd(), 128) == 0, CommError,
               "rendezvous: rank 0 cannot listen on port ", port, " (in use?)");
  return v4;
}

std::string serve(const RendezvousOptions& o, const std::string& payload, Clock::time_point deadline) {
  Socket listener = listen_on(o.port);
  std::set<int> joined;
  while (int(joined.size()) < o.world_size - 1) {
    pollfd p{listener.fd(), POLLIN, 0};
    PONDER_CHECK(::poll(&p, 1, ms_left(deadline)) > 0, CommError, "rendezvous: only ", joined.size() + 1, " of ", o.world_size,
                 " ranks joined on port ", o.port, " within ", o.timeout.count() / 1000.0, " s");
    Socket peer(::accept(listener.fd(), nullptr, nullptr));
    if (peer.fd() < 0) continue;
    try {
      // "<hello> <job id> <rank>"
      const std::string hello = receive(peer.fd(), deadline, "a rank's greeting");
      const std::string expected = std::string(kHello) + " " + o.job_id + " ";
      if (hello.rfind(expected, 0) != 0) {
        refuse(peer.fd(), "rank 0 serves job \"" + o.job_id + "\"");
        continue;  // another job's process, or not ours at all: keep waiting for our ranks
      }
      const int rank = std::stoi(hello.substr(expected.size()));
      if (rank <= 0 || rank >= o.world_size || !joined.insert(rank).second) {
        refuse(peer.fd(), "rank " + std::to_string(rank) + " is taken or outside the job");
        continue;
      }
      send_all(peer.fd(), "ok " + std::to_string(payload.size()) + "\n" + payload);
    } catch (const CommError&) {
      // A peer that vanished mid-greeting; its rank, if real, will retry.
    } catch (const std::logic_error&) {
      refuse(peer.fd(), "unreadable greeting");
    }
  }
  return payload;
}

// A connected socket to host:port, or -1 now (the caller retries).
Socket try_connect(const RendezvousOptions& o) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(o.host.c_str(), std::to_string(o.port).c_str(), &hints, &found) != 0) return Socket();
  Socket s;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    Socket candidate(::socket(a->ai_family, a->ai_socktype, a->ai_protocol));
    if (candidate.fd() >= 0 && ::connect(candidate.fd(), a->ai_addr, a->ai_addrlen) == 0) {
      s = std::move(candidate);
      break;
    }
  }
  ::freeaddrinfo(found);
  return s;
}

std::string join(const RendezvousOptions& o, Clock::time_point deadline) {
  while (true) {
    Socket s = try_connect(o);
    if (s.fd() >= 0) {
      send_all(s.fd(), std::string(kHello) + " " + o.job_id + " " + std::to_string(o.rank) + "\n");
      const std::string answer = receive(s.fd(), deadline, "rank 0's answer");
      PONDER_CHECK(answer.rfind("ok ", 0) == 0, CommError, "rendezvous at ", o.host, ":", o.port, " (job \"", o.job_id,
                   "\", rank ", o.rank, "): ", answer);
      return receive(s.fd(), deadline, "rank 0's payload", std::stoul(answer.substr(3)));
    }
    PONDER_CHECK(Clock::now() < deadline, CommError, "rendezvous: rank 0 at ", o.host, ":", o.port, " did not answer within ",
                 o.timeout.count() / 1000.0, " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

int free_tcp_port() {
  Socket s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  PONDER_CHECK(s.fd() >= 0 && ::bind(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                   ::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&addr), &len) == 0,
               CommError, "no free TCP port for a rendezvous");
  return ntohs(addr.sin_port);
}

std::string rendezvous(const RendezvousOptions& o, const std::string& payload) {
  PONDER_CHECK(o.rank >= 0 && o.rank < o.world_size, ValueError, "rendezvous: rank ", o.rank, " is outside a world of ",
               o.world_size);
  const auto deadline = Clock::now() + o.timeout;
  return o.rank == 0 ? serve(o, payload, deadline) : join(o, deadline);
}

}  // namespace ponder::dist
