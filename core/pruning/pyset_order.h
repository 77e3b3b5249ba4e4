// Iteration order of a CPython `set` of ints, emulated in C++.
//
// The DART reference processes its pivots by iterating `set(img_piv + txt_piv)`; because every
// pivot's picks leave the candidate pool, that order changes which tokens are kept. For ints the
// order is deterministic: hash(n) == n (n >= 0; hash(-1) == -2), an open-addressing table that
// starts at 8 slots, probes linearly (up to 9 further slots while they fit below the mask), then
// jumps with i = (5*i + 1 + (perturb >>= 5)) & mask; after an insertion that makes fill*5 >= mask*3
// the table grows to the smallest power of two > used*4 (used*2 above 50000 entries), re-inserting
// the old entries in old slot order; iteration walks slots in ascending order. This mirrors
// Objects/setobject.c (set_add_entry, set_table_resize, set_insert_clean) of CPython 3.7 to 3.13.
// Only |n| < 2^61 - 1 is supported (larger ints hash modulo the Mersenne prime).
#pragma once

#include <cstdint>
#include <vector>

namespace dl {

// The order in which `for x in s` visits s = set(values) (values added left to right; duplicates
// are ignored as CPython does). Throws dl::Error for |value| >= 2^61 - 1.
std::vector<int64_t> pyset_iteration_order(const std::vector<int64_t>& values);

// CPython's hash() of a small int (n for n != -1, -2 for -1), as the unsigned value the table uses.
uint64_t pyset_int_hash(int64_t value);

// Table size (slots) of a set after `count` distinct insertions, from the growth rule above.
int64_t pyset_table_size(int64_t count);

}  // namespace dl
