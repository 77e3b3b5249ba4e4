// CPython small-int set iteration order (see pyset_order.h for the rules being emulated).
#include "core/pruning/pyset_order.h"

#include "core/common.h"

namespace dl {

namespace {

constexpr int pyset_min_size = 8;       // PySet_MINSIZE
constexpr uint64_t pyset_linear_probes = 9;  // LINEAR_PROBES
constexpr int pyset_perturb_shift = 5;   // PERTURB_SHIFT

struct pyset_slot {
    bool used = false;
    int64_t key = 0;
    uint64_t hash = 0;
};

// CPython's probe sequence for `hash` (mask = size - 1): returns the slot holding `key`, or the
// first free slot on the way, where set_add_entry would insert it (no deletions, so no dummies).
uint64_t pyset_probe(const std::vector<pyset_slot>& table, int64_t key, uint64_t hash, bool* found) {
    const uint64_t mask = table.size() - 1;
    uint64_t perturb = hash;
    uint64_t i = hash & mask;
    while (true) {
        const uint64_t probes = (i + pyset_linear_probes <= mask) ? pyset_linear_probes : 0;
        for (uint64_t j = 0; j <= probes; j++) {
            const pyset_slot& s = table[i + j];
            if (!s.used || (s.hash == hash && s.key == key)) {
                *found = s.used;
                return i + j;
            }
        }
        perturb >>= pyset_perturb_shift;
        i = (i * 5 + 1 + perturb) & mask;
    }
}

// set_table_resize: new size is the smallest power of two (>= 8) strictly above min_used;
// entries move in old slot order.
std::vector<pyset_slot> pyset_resize(const std::vector<pyset_slot>& old, int64_t min_used) {
    uint64_t size = pyset_min_size;
    while (size <= uint64_t(min_used)) size <<= 1;
    std::vector<pyset_slot> table(size);
    bool found = false;
    for (const pyset_slot& s : old) {
        if (s.used) table[pyset_probe(table, s.key, s.hash, &found)] = s;
    }
    return table;
}

}  // namespace

uint64_t pyset_int_hash(int64_t value) {
    const int64_t modulus = (int64_t(1) << 61) - 1;  // _PyHASH_MODULUS on 64-bit builds
    if (value >= modulus || value <= -modulus) {
        throw Error(str_cat("pyset_order: value ", value, " is beyond the small-int hash range"));
    }
    const int64_t h = (value == -1) ? -2 : value;
    return uint64_t(h);
}

std::vector<int64_t> pyset_iteration_order(const std::vector<int64_t>& values) {
    std::vector<pyset_slot> table(pyset_min_size);
    int64_t used = 0;  // no deletions, so fill == used
    for (int64_t v : values) {
        const uint64_t h = pyset_int_hash(v);
        bool found = false;
        const uint64_t slot = pyset_probe(table, v, h, &found);
        if (found) continue;
        table[slot] = pyset_slot{true, v, h};
        used++;
        const uint64_t mask = table.size() - 1;
        if (uint64_t(used) * 5 >= mask * 3) {
            table = pyset_resize(table, used > 50000 ? used * 2 : used * 4);
        }
    }
    std::vector<int64_t> order;
    order.reserve(size_t(used));
    for (const pyset_slot& s : table) {
        if (s.used) order.push_back(s.key);
    }
    return order;
}

int64_t pyset_table_size(int64_t count) {
    int64_t size = pyset_min_size;
    for (int64_t used = 1; used <= count; used++) {
        if (used * 5 >= (size - 1) * 3) {
            const int64_t min_used = used > 50000 ? used * 2 : used * 4;
            size = pyset_min_size;
            while (size <= min_used) size <<= 1;
        }
    }
    return size;
}

}  // namespace dl
