// SPDX-License-Identifier: MIT
// Synthetic traffic for percore-demo: a flow population with Zipf
// popularity, a protocol mix, IMIX-like sizes and a few packets that are
// dropped or fail their checksum, all from one seed.
//
// Each worker gets its own trace, generated before the run, so the hot loop
// reads packets sequentially (as a NIC's receive ring hands them over) and
// spends no cycles on random numbers. Flows are spread over workers the way
// receive-side scaling spreads them over cores: worker w owns every W-th
// flow of each protocol, so a flow's packets always reach the same worker.
// Within a protocol, a worker's flows are ranked by a Zipf law (weight of
// rank k ~ 1/k^s). The top ranks (an eighth of the flows) always belong to
// the same flows, the elephants. The other ranks cover half of the
// remaining flows at a time, a window that each pass over the trace slides
// on by 1/256 of them (churn): mice come and go, and the flows the window
// has left go idle and expire.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace percore::demo {

inline constexpr std::size_t kProtos = 4;
inline constexpr std::array<const char*, kProtos> kProtoNames{"tcp", "udp", "icmp", "other"};
inline constexpr std::array<std::uint8_t, kProtos> kIpProto{6, 17, 1, 47};  // other: GRE

// What happens to a packet after it is counted as received.
enum Fate : std::uint8_t { forwarded, drop_acl, drop_ttl, drop_no_route, bad_checksum, kFates };
inline constexpr std::size_t kDropReasons = 3;  // drop_acl .. drop_no_route
inline constexpr std::array<const char*, kDropReasons> kDropNames{"acl", "ttl", "no_route"};

// The 5-tuple (IPv4): trivially copyable, 16 bytes, the FlowTable key.
struct FlowKey {
    std::uint32_t src = 0, dst = 0;
    std::uint16_t sport = 0, dport = 0;
    std::uint8_t proto = 0;
    std::uint8_t pad[3] = {};
    friend bool operator==(const FlowKey& a, const FlowKey& b) noexcept {
        return std::memcmp(&a, &b, sizeof(FlowKey)) == 0;
    }
};
static_assert(sizeof(FlowKey) == 16);

// Folds the two words; no finalizer, because FlowTable mixes every hash
// before use (and std::unordered_map reduces modulo a prime).
struct FlowKeyHash {
    std::size_t operator()(const FlowKey& k) const noexcept {
        std::uint64_t a, b;
        std::memcpy(&a, &k, 8);
        std::memcpy(&b, reinterpret_cast<const char*>(&k) + 8, 8);
        return static_cast<std::size_t>(a ^ (b * 0x9e3779b97f4a7c15ull));
    }
};

inline std::uint64_t mix64(std::uint64_t x) noexcept {
    x ^= x >> 30, x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27, x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// The 5-tuple of flow `id`, computed rather than looked up (a table of a
// million keys would add a cache miss per packet to every mode alike).
// Distinct ids give distinct keys: the source address holds the id.
inline FlowKey flow_key(std::uint32_t id, std::size_t proto) noexcept {
    static constexpr std::array<std::uint16_t, 6> kPorts{443, 80, 53, 8080, 123, 4789};
    const std::uint64_t h = mix64(id + 1);
    FlowKey k;
    k.src = 0x0a000000u | id;                                    // 10.0.0.0/8
    k.dst = 0xc0a80000u | static_cast<std::uint32_t>(h & 0xffff);  // 192.168.0.0/16
    if (proto < 2) {
        k.sport = static_cast<std::uint16_t>(1024 + ((h >> 16) % 64000));
        k.dport = kPorts[(h >> 40) % kPorts.size()];
    }
    k.proto = kIpProto[proto];
    return k;
}

inline std::string format_key(const FlowKey& k) {
    auto ip = [](std::uint32_t a) {
        return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) +
               "." + std::to_string(a & 255);
    };
    const char* p = "ip";
    for (std::size_t i = 0; i < kProtos; ++i)
        if (kIpProto[i] == k.proto) p = kProtoNames[i];
    if (k.proto == 6 || k.proto == 17)
        return ip(k.src) + ":" + std::to_string(k.sport) + " > " + ip(k.dst) + ":" + std::to_string(k.dport) + " " + p;
    return ip(k.src) + " > " + ip(k.dst) + " " + p;
}

struct TrafficConfig {
    std::uint32_t flows = 100'000;
    double zipf = 1.1;
    std::array<double, kProtos> mix{70, 25, 3, 2};         // weights
    std::array<double, kDropReasons> drop_pct{0.5, 0.1, 0.2};  // acl, ttl, no_route
    double bad_checksum_pct = 0.05;
    std::uint64_t seed = 1;
    std::size_t trace_packets = std::size_t{1} << 18;  // per worker, a power of two
};

// One received packet, as the trace stores it: 8 bytes.
struct Packet {
    std::uint32_t rank;  // popularity rank among the worker's flows of its protocol
    std::uint16_t size;  // bytes
    std::uint8_t proto;
    std::uint8_t fate;
};

// A worker's flows of one protocol: ids start + w + W * j for j < count.
// Ranks below `stable` keep their flow; the others rotate.
struct FlowSet {
    std::uint32_t start = 0, count = 0, stable = 0;
};

class Trace {
public:
    Trace(const TrafficConfig& c, int worker, int workers) : w_(static_cast<std::uint32_t>(worker)),
                                                             nw_(static_cast<std::uint32_t>(workers)) {
        // Split the population over protocols by the mix, then over workers.
        double total = 0;
        for (double m : c.mix) total += m;
        std::uint32_t start = 0;
        for (std::size_t p = 0; p < kProtos; ++p) {
            auto n = static_cast<std::uint32_t>(std::llround(c.flows * c.mix[p] / total));
            if (p + 1 == kProtos) n = c.flows - start;
            n = std::max(n, nw_);  // every worker gets at least one flow of each protocol
            sets_[p].start = start;
            sets_[p].count = n / nw_;
            sets_[p].stable = std::max<std::uint32_t>(1, sets_[p].count / 8);
            start += n;
        }
        max_id_ = start;
        churn_.fill(0);

        std::mt19937_64 rng(mix64(c.seed * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(worker) + 1));
        std::discrete_distribution<int> proto(c.mix.begin(), c.mix.end());
        std::discrete_distribution<int> size({7, 4, 1});
        static constexpr std::array<std::uint16_t, 3> kSizes{64, 576, 1500};
        const std::array<double, kFates> fate_w{100.0 - c.drop_pct[0] - c.drop_pct[1] - c.drop_pct[2] -
                                                     c.bad_checksum_pct,
                                                 c.drop_pct[0], c.drop_pct[1], c.drop_pct[2], c.bad_checksum_pct};
        std::discrete_distribution<int> fate(fate_w.begin(), fate_w.end());
        std::array<std::vector<double>, kProtos> cdf;
        for (std::size_t p = 0; p < kProtos; ++p) {
            const FlowSet& f = sets_[p];
            cdf[p].resize(f.stable + std::max<std::uint32_t>(1, (f.count - f.stable) / 2));
            if (f.count == f.stable) cdf[p].resize(f.count);
            double acc = 0;
            for (std::size_t k = 0; k < cdf[p].size(); ++k) cdf[p][k] = acc += std::pow(static_cast<double>(k) + 1, -c.zipf);
        }
        std::uniform_real_distribution<double> u(0, 1);
        packets_.resize(c.trace_packets);
        for (Packet& pk : packets_) {
            const auto p = static_cast<std::size_t>(proto(rng));
            const auto& f = cdf[p];
            const double x = u(rng) * f.back();
            pk.rank = static_cast<std::uint32_t>(std::upper_bound(f.begin(), f.end(), x) - f.begin());
            if (pk.rank >= f.size()) pk.rank = static_cast<std::uint32_t>(f.size() - 1);
            pk.size = kSizes[static_cast<std::size_t>(size(rng))];
            pk.proto = static_cast<std::uint8_t>(p);
            pk.fate = static_cast<std::uint8_t>(fate(rng));
        }
    }

    std::size_t size() const noexcept { return packets_.size(); }
    const Packet& operator[](std::size_t i) const noexcept { return packets_[i & (packets_.size() - 1)]; }

    // The flow id of packet p in the current pass. No division: the rank
    // and the churn offset are both below the count.
    std::uint32_t flow_id(const Packet& p) const noexcept {
        const FlowSet& s = sets_[p.proto];
        std::uint32_t j = p.rank;
        if (j >= s.stable) {
            j += churn_[p.proto];
            if (j >= s.count) j -= s.count - s.stable;
        }
        return s.start + w_ + nw_ * j;
    }
    // Called after each pass over the trace.
    void next_pass() noexcept {
        for (std::size_t p = 0; p < kProtos; ++p) {
            const std::uint32_t moving = sets_[p].count - sets_[p].stable;
            if (moving == 0) continue;
            churn_[p] = (churn_[p] + std::max<std::uint32_t>(1, moving / 256)) % moving;
        }
    }
    // One past the largest flow id any worker can produce.
    std::uint32_t max_id() const noexcept { return max_id_; }

private:
    std::uint32_t w_, nw_;
    std::array<FlowSet, kProtos> sets_{};
    std::array<std::uint32_t, kProtos> churn_{};
    std::uint32_t max_id_ = 0;
    std::vector<Packet> packets_;
};

}  // namespace percore::demo
