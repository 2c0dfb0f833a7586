// SPDX-License-Identifier: MIT
// percore/patterns/stats_layout.hpp - naming the counters of a user's stats struct.
//
// Every statistics pattern (shared_*.hpp, buffered_stats.hpp,
// per_core_*.hpp, seqcount.hpp, snapshot.hpp) is a template on a StatsLayout:
// the user's own plain struct of uint64_t counters (nested structs and
// arrays of them are fine), or std::array<std::uint64_t, N> for N anonymous
// counters. A counter is named by a Field<S>, an 8-byte word index into S,
// built once from a member pointer and used on the fast path:
//
//   struct Flow { std::uint64_t pkts, bytes; };
//   struct EpStats { std::uint64_t pkts, bytes; Flow flows[1024]; };
//   auto pkts = percore::field(&EpStats::pkts);
//   auto flow_bytes = percore::field(&EpStats::flows, f, &Flow::bytes);
//   auto third = percore::field_at<std::array<std::uint64_t, 8>>(2);
//
// Cost: a Field is a 4-byte index; making one from constant member pointers
// folds to a constant. Patterns store S as words and hand back an S by value
// (std::bit_cast), so S must be trivially copyable with no padding.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <array>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace percore {

// A struct made only of uint64_t (directly, or in nested structs/arrays):
// 8-byte aligned, no padding, trivially copyable. (Members of other 8-byte
// integer types pass the check and are treated as uint64_t.)
template <class S>
concept StatsLayout = std::is_trivially_copyable_v<S> && std::is_standard_layout_v<S> &&
                      std::is_default_constructible_v<S> && std::has_unique_object_representations_v<S> &&
                      sizeof(S) % 8 == 0 && alignof(S) == 8;

template <StatsLayout S>
inline constexpr std::size_t kWords = sizeof(S) / 8;

template <StatsLayout S>
using Words = std::array<std::uint64_t, kWords<S>>;

// One counter of S: its index among S's 8-byte words.
template <StatsLayout S>
struct Field {
    std::uint32_t word;
    friend constexpr bool operator==(Field, Field) = default;
};

namespace detail {

// An S at a fixed address, to turn member pointers into offsets. Never
// written; only addresses are taken.
template <StatsLayout S>
inline constexpr S kProbe{};

template <StatsLayout S>
Field<S> field_at_address(const void* p) noexcept {
    const auto off = reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(&kProbe<S>);
    assert(off % 8 == 0 && off < sizeof(S));
    return Field<S>{static_cast<std::uint32_t>(off / 8)};
}

}  // namespace detail

// A direct uint64_t member: field(&S::pkts).
template <StatsLayout S>
Field<S> field(std::uint64_t S::*m) noexcept {
    return detail::field_at_address<S>(&(detail::kProbe<S>.*m));
}

// Element i of an array member of uint64_t (C array or std::array).
template <StatsLayout S, class A>
Field<S> field(A S::*arr, std::size_t i) noexcept {
    assert(i < std::size(detail::kProbe<S>.*arr));
    return detail::field_at_address<S>(&(detail::kProbe<S>.*arr)[i]);
}

// Member m of element i of an array of structs: field(&S::flows, f, &Flow::bytes).
template <StatsLayout S, class A, class E>
Field<S> field(A S::*arr, std::size_t i, std::uint64_t E::*m) noexcept {
    assert(i < std::size(detail::kProbe<S>.*arr));
    return detail::field_at_address<S>(&((detail::kProbe<S>.*arr)[i].*m));
}

// Word i of S, for std::array<std::uint64_t, N> and other index-based layouts.
template <StatsLayout S>
constexpr Field<S> field_at(std::size_t i) noexcept {
    assert(i < kWords<S>);
    return Field<S>{static_cast<std::uint32_t>(i)};
}

// Between S and its words; both are bit copies.
template <StatsLayout S>
S from_words(const Words<S>& w) noexcept {
    return std::bit_cast<S>(w);
}
// An S whose word i is word(i), for every word in order.
template <StatsLayout S, class F>
S gather(F&& word) {
    Words<S> w;
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = word(i);
    return from_words<S>(w);
}
template <StatsLayout S>
Words<S> to_words(const S& s) noexcept {
    return std::bit_cast<Words<S>>(s);
}

// Wrapping difference a - b, word by word (a value minus a reset offset).
template <StatsLayout S>
Words<S> minus(const Words<S>& a, const Words<S>& b) noexcept {
    Words<S> d;
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = a[i] - b[i];
    return d;
}

}  // namespace percore
