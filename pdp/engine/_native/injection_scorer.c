/* The learned injection tier's window scoring in C: the same score as
 * pdp/engine/_injection_model.py computes with its Aho-Corasick automaton
 * (that path is the reference and the fallback), without a Python object
 * per matched key.
 *
 * A model key is one of two shapes:
 *   - a word n-gram padded with spaces (" ignore previous "): it occurs in a
 *     text exactly where n consecutive space-separated tokens equal its words
 *     (its words hold no space and are not empty, so its spaces must line up
 *     with the text's, double spaces in the text included);
 *   - a run of 1..MAX_RUN characters without a space (bigrams of scripts
 *     written without spaces), matched anywhere.
 * The keys are in one open-addressing hash table keyed by a hash of their
 * code points, built once per model, with a bitmap filter in front of it.
 * Scoring hashes each token of the text once, then each run of up to
 * max_words tokens from every space of a window from its tokens' hashes,
 * and each run of characters from the lowest code point of any unspaced
 * key up. A hash only finds candidates: a key counts when its text equals
 * the text's. Weights are integers (units of 1e-4), so the sum does not
 * depend on the order keys are found in. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define ALWAYS_INLINE __forceinline
#else
#define ALWAYS_INLINE inline
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)(address))
#endif

#define WORD_KEY 0
#define RUN_KEY 1
#define MAX_RUN 8
#define MAX_KEY 0xFFFF
#define WEIGHT_LIMIT (1ULL << 62)
#define WORD_SEED 0xcbf29ce484222325ULL
#define NGRAM_SEED 0x2545f4914f6cdd1dULL
#define RUN_SEED 0x84222325cbf29ce4ULL

/* A key: where its text is in the pool (word keys without their padding),
 * stored 1 byte per character when it is Latin-1 and 4 otherwise. Small, so
 * that the entries of a large vocabulary stay in cache. */
typedef struct {
    uint32_t offset; /* in bytes */
    uint16_t length; /* in characters */
    uint8_t kind;
    uint8_t width;
} Entry;

/* A hash table slot: the high half of the key's hash (most lookups are of
 * n-grams that are no key, and end on a tag mismatch without reading the
 * entry) and the entry's index + 1 (0: empty). */
typedef struct {
    uint32_t tag;
    uint32_t entry;
} Slot;

typedef struct {
    PyObject_HEAD
    Entry *entries; /* one per key, in the model's order */
    long long *weights;
    Py_ssize_t count;
    Slot *table;
    size_t mask;
    /* One bit per hash of a key, far fewer bytes than the table: most
     * lookups end here, in cache. */
    uint64_t *filter;
    int filter_shift;
    unsigned char *pool;
    Py_ssize_t max_words;
    unsigned run_lengths; /* bit m set: some unspaced key has m characters */
    Py_ssize_t max_run;
    Py_UCS4 min_run_char; /* the lowest code point in any unspaced key */
    long long bias;
    Py_ssize_t window;
    Py_ssize_t overlap;
    int ready; /* set once __init__ succeeded */
} Scorer;

static inline uint64_t
step(uint64_t hash, Py_UCS4 c)
{
    return (hash ^ (uint64_t)c) * 0x100000001b3ULL;
}

/* The hash of an n-gram: its words' hashes joined in order. */
static inline uint64_t
join(uint64_t hash, uint64_t word)
{
    hash = (hash ^ word) * 0x9e3779b97f4a7c15ULL;
    return hash ^ (hash >> 32);
}

static inline uint64_t
mix(uint64_t hash)
{
    hash ^= hash >> 31;
    hash *= 0x9e3779b97f4a7c15ULL;
    return hash ^ (hash >> 29);
}

/* A text being scored: its characters, read as padded with one space at
 * each end (index 0 and length - 1) without copying it. */
typedef struct {
    const void *data;
    int kind;
    Py_ssize_t length; /* padded */
} Text;

static inline Py_UCS4
char_at(const Text *text, Py_ssize_t i, int kind)
{
    if (i == 0 || i == text->length - 1)
        return ' ';
    return PyUnicode_READ(kind, text->data, i - 1);
}

static inline int
same_text(const Scorer *self, const Entry *entry, const Text *text, Py_ssize_t start, int kind)
{
    const unsigned char *key = self->pool + entry->offset;
    if (entry->width == 1 && kind == PyUnicode_1BYTE_KIND)
        return memcmp(key, (const Py_UCS1 *)text->data + start - 1, entry->length) == 0;
    for (Py_ssize_t j = 0; j < entry->length; j++) {
        Py_UCS4 c = entry->width == 1 ? key[j] : ((const Py_UCS4 *)key)[j];
        if (c != char_at(text, start + j, kind))
            return 0;
    }
    return 1;
}

static inline uint64_t
filter_bit(const Scorer *self, uint64_t mixed)
{
    return (mixed * 0xff51afd7ed558ccdULL) >> self->filter_shift;
}

static inline int
in_filter(const Scorer *self, uint64_t mixed)
{
    uint64_t bit = filter_bit(self, mixed);
    return (self->filter[bit >> 6] >> (bit & 63)) & 1;
}

/* The index of the key of ``kind`` whose text is text[start:start+length]
 * (its hash mixed: ``mixed``), or -1, past the filter. Its characters are
 * never the padding. */
static inline Py_ssize_t
probe(const Scorer *self, uint64_t mixed, int key_kind, const Text *text, Py_ssize_t start,
      Py_ssize_t length, int kind)
{
    uint32_t tag = (uint32_t)(mixed >> 32);
    size_t slot = (size_t)mixed & self->mask;
    for (;;) {
        const Slot *at = &self->table[slot];
        if (at->entry == 0)
            return -1;
        if (at->tag == tag) {
            const Entry *entry = &self->entries[at->entry - 1];
            if (entry->kind == key_kind && entry->length == length &&
                same_text(self, entry, text, start, kind))
                return at->entry - 1;
        }
        slot = (slot + 1) & self->mask;
    }
}

static inline Py_ssize_t
lookup(const Scorer *self, uint64_t hash, int key_kind, const Text *text, Py_ssize_t start,
       Py_ssize_t length, int kind)
{
    uint64_t mixed = mix(hash);
    if (!in_filter(self, mixed))
        return -1;
    return probe(self, mixed, key_kind, text, start, length, kind);
}

/* A word n-gram of the text to look up. */
typedef struct {
    uint64_t mixed;
    Py_ssize_t start;
    Py_ssize_t length;
} Candidate;

static void
Scorer_dealloc(Scorer *self)
{
    PyMem_Free(self->entries);
    PyMem_Free(self->weights);
    PyMem_Free(self->table);
    PyMem_Free(self->filter);
    PyMem_Free(self->pool);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Checks the shape of ``key``: its kind, the span of its text (word keys
 * without their padding) and its number of words. */
static int
classify(PyObject *key, Py_ssize_t index, int *key_kind, Py_ssize_t *first, Py_ssize_t *length,
         Py_ssize_t *words)
{
    Py_ssize_t size = PyUnicode_GET_LENGTH(key);
    int kind = PyUnicode_KIND(key);
    const void *data = PyUnicode_DATA(key);
    Py_ssize_t spaces = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (PyUnicode_READ(kind, data, i) != ' ')
            continue;
        spaces++;
        if (i > 0 && i < size - 1 && PyUnicode_READ(kind, data, i - 1) == ' ')
            goto bad;
    }
    if (spaces == 0 && size >= 1 && size <= MAX_RUN) {
        *key_kind = RUN_KEY;
        *first = 0;
        *length = size;
        *words = 0;
        return 0;
    }
    if (size >= 3 && size - 2 <= MAX_KEY && PyUnicode_READ(kind, data, 0) == ' ' &&
        PyUnicode_READ(kind, data, size - 1) == ' ' && PyUnicode_READ(kind, data, 1) != ' ' &&
        PyUnicode_READ(kind, data, size - 2) != ' ') {
        *key_kind = WORD_KEY;
        *first = 1;
        *length = size - 2;
        *words = spaces - 1;
        return 0;
    }
bad:
    PyErr_Format(PyExc_ValueError,
                 "features[%zd]: key %R is neither a word n-gram padded with single spaces "
                 "nor a run of 1 to %d characters without a space",
                 index, key, MAX_RUN);
    return -1;
}

static int
Scorer_init(Scorer *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"keys", "weights", "bias", "window", "overlap", NULL};
    PyObject *keys, *weights;
    long long bias;
    Py_ssize_t window, overlap;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!Lnn:InjectionScorer", names,
                                     &PyTuple_Type, &keys, &PyTuple_Type, &weights, &bias,
                                     &window, &overlap))
        return -1;
    if (self->entries != NULL) {
        PyErr_SetString(PyExc_TypeError, "an InjectionScorer is initialised once");
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(keys);
    if (PyTuple_GET_SIZE(weights) != count) {
        PyErr_SetString(PyExc_ValueError, "keys and weights differ in length");
        return -1;
    }
    if (count >= 0x7FFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "too many keys");
        return -1;
    }
    if (window < 1 || overlap < 0) {
        PyErr_SetString(PyExc_ValueError, "window must be >= 1 and overlap >= 0");
        return -1;
    }
    size_t pool_size = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "features[%zd]: key must be str", i);
            return -1;
        }
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(key) < 0)
            return -1;
#endif
        pool_size += (size_t)PyUnicode_GET_LENGTH(key) * sizeof(Py_UCS4);
    }
    if (pool_size >= 0xFFFFFFFFu) {
        PyErr_SetString(PyExc_ValueError, "the keys are too long");
        return -1;
    }
    size_t capacity = 16;
    while (capacity < (size_t)count * 2)
        capacity <<= 1;
    size_t filter_bits = 64;
    int filter_shift = 64 - 6;
    while (filter_bits < (size_t)count * 16) {
        filter_bits <<= 1;
        filter_shift--;
    }
    self->entries = PyMem_Calloc((size_t)count + 1, sizeof(Entry));
    self->weights = PyMem_Calloc((size_t)count + 1, sizeof(long long));
    self->table = PyMem_Calloc(capacity, sizeof(Slot));
    self->filter = PyMem_Calloc(filter_bits / 64, sizeof(uint64_t));
    self->pool = PyMem_Malloc(pool_size + 1);
    if (self->entries == NULL || self->weights == NULL || self->table == NULL ||
        self->filter == NULL || self->pool == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->mask = capacity - 1;
    self->filter_shift = filter_shift;
    self->count = count;
    self->bias = bias;
    self->window = window;
    self->overlap = overlap;
    self->min_run_char = 0x10FFFF + 1;
    size_t used = 0;
    unsigned long long total = bias < 0 ? 0ULL - (unsigned long long)bias : (unsigned long long)bias;
    if (total > WEIGHT_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "the bias is beyond 2**62");
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        Entry *entry = &self->entries[i];
        int key_kind;
        Py_ssize_t first, length, words;
        if (classify(key, i, &key_kind, &first, &length, &words) < 0)
            return -1;
        self->weights[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(weights, i));
        if (self->weights[i] == -1 && PyErr_Occurred())
            return -1;
        /* No sum of weights may overflow: the Python path's integers do not. */
        unsigned long long magnitude =
            self->weights[i] < 0 ? 0ULL - (unsigned long long)self->weights[i]
                                 : (unsigned long long)self->weights[i];
        if (magnitude > WEIGHT_LIMIT - total) {
            PyErr_Format(PyExc_ValueError, "features[%zd]: the weights add up beyond 2**62", i);
            return -1;
        }
        total += magnitude;
        int kind = PyUnicode_KIND(key);
        const void *data = PyUnicode_DATA(key);
        entry->kind = (uint8_t)key_kind;
        entry->length = (uint16_t)length;
        entry->width = PyUnicode_MAX_CHAR_VALUE(key) <= 0xFF ? 1 : 4;
        entry->offset = (uint32_t)used;
        /* Hashed as scoring hashes it: a word key word by word. */
        uint64_t hash = key_kind == WORD_KEY ? NGRAM_SEED : RUN_SEED;
        uint64_t word = WORD_SEED;
        for (Py_ssize_t j = 0; j < length; j++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, first + j);
            if (key_kind == RUN_KEY)
                hash = step(hash, c);
            else if (c == ' ') {
                hash = join(hash, word);
                word = WORD_SEED;
            }
            else
                word = step(word, c);
            if (entry->width == 1)
                self->pool[used + (size_t)j] = (unsigned char)c;
            else
                memcpy(self->pool + used + (size_t)j * sizeof(Py_UCS4), &c, sizeof(Py_UCS4));
            if (key_kind == RUN_KEY && c < self->min_run_char)
                self->min_run_char = c;
        }
        if (key_kind == WORD_KEY)
            hash = join(hash, word);
        used += (size_t)length * entry->width;
        if (key_kind == WORD_KEY) {
            if (words > self->max_words)
                self->max_words = words;
        }
        else {
            self->run_lengths |= 1u << length;
            if (length > self->max_run)
                self->max_run = length;
        }
        /* The same check as scoring's lookup, on the key itself as a text. */
        uint64_t mixed = mix(hash);
        uint64_t bit = filter_bit(self, mixed);
        self->filter[bit >> 6] |= 1ULL << (bit & 63);
        uint32_t tag = (uint32_t)(mixed >> 32);
        size_t slot = (size_t)mixed & self->mask;
        for (; self->table[slot].entry != 0; slot = (slot + 1) & self->mask) {
            const Entry *other = &self->entries[self->table[slot].entry - 1];
            if (self->table[slot].tag != tag || other->kind != entry->kind ||
                other->length != entry->length)
                continue;
            int same = 1;
            for (Py_ssize_t j = 0; j < length && same; j++) {
                const unsigned char *at = self->pool + other->offset;
                Py_UCS4 c = other->width == 1 ? at[j] : ((const Py_UCS4 *)at)[j];
                same = c == PyUnicode_READ(kind, data, first + j);
            }
            if (same) {
                PyErr_Format(PyExc_ValueError, "features[%zd]: key %R appears twice", i, key);
                return -1;
            }
        }
        self->table[slot].tag = tag;
        self->table[slot].entry = (uint32_t)i + 1;
    }
    self->ready = 1;
    return 0;
}

/* Python's round() of length / size (half to even), in integers. */
static Py_ssize_t
window_count(Py_ssize_t length, Py_ssize_t size)
{
    Py_ssize_t quotient = length / size, rest = length % size;
    if (2 * rest > size || (2 * rest == size && (quotient & 1)))
        quotient++;
    return quotient < 1 ? 1 : quotient;
}

/* length * i // count without overflow. */
static inline Py_ssize_t
cut(Py_ssize_t length, Py_ssize_t i, Py_ssize_t count)
{
    Py_ssize_t whole = length / count, rest = length % count;
    return whole * i + rest * i / count;
}

static inline void
add(const Scorer *self, uint64_t *seen, Py_ssize_t found, long long *sum)
{
    if (found >= 0 && !(seen[found >> 6] & (1ULL << (found & 63)))) {
        seen[found >> 6] |= 1ULL << (found & 63);
        *sum += self->weights[found];
    }
}

/* The best window's sum; ``kind`` is the text's, a constant in each of the
 * three inlined copies, so that reading a character is one load. */
static ALWAYS_INLINE long long
best_window(const Scorer *self, const Text *text, const Py_ssize_t *spaces,
            const uint64_t *word_hashes, Py_ssize_t space_count, Candidate *candidates,
            uint64_t *seen, size_t seen_words, int runs, int kind)
{
    Py_ssize_t length = text->length;
    Py_ssize_t windows = window_count(length, self->window);
    long long best = 0;
    Py_ssize_t first_space = 0;
    for (Py_ssize_t w = 0; w < windows; w++) {
        Py_ssize_t start = cut(length, w, windows) - self->overlap;
        Py_ssize_t end = cut(length, w + 1, windows);
        if (start < 0)
            start = 0;
        long long sum = 0;
        memset(seen, 0, seen_words * sizeof(uint64_t));
        while (first_space < space_count && spaces[first_space] < start)
            first_space++;
        /* Word keys: from each space, the next 1..max_words tokens, while
         * the space after the last one is inside the window. In three passes
         * (hash all and fetch their filter words; keep those in the filter
         * and fetch their slots; probe those), so that the memory reads of
         * a table not in cache overlap instead of waiting one by one. */
        Py_ssize_t count = 0;
        for (Py_ssize_t k = first_space; k < space_count && spaces[k] < end; k++) {
            uint64_t hash = NGRAM_SEED;
            for (Py_ssize_t n = 1;
                 n <= self->max_words && k + n < space_count && spaces[k + n] < end; n++) {
                hash = join(hash, word_hashes[k + n - 1]);
                Py_ssize_t size = spaces[k + n] - spaces[k] - 1;
                if (size > MAX_KEY)
                    continue;
                Candidate *candidate = &candidates[count++];
                candidate->mixed = mix(hash);
                candidate->start = spaces[k] + 1;
                candidate->length = size;
                PREFETCH(&self->filter[filter_bit(self, candidate->mixed) >> 6]);
            }
        }
        Py_ssize_t passed = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            if (in_filter(self, candidates[i].mixed)) {
                PREFETCH(&self->table[(size_t)candidates[i].mixed & self->mask]);
                candidates[passed++] = candidates[i];
            }
        }
        for (Py_ssize_t i = 0; i < passed; i++)
            add(self, seen,
                probe(self, candidates[i].mixed, WORD_KEY, text, candidates[i].start,
                      candidates[i].length, kind),
                &sum);
        /* Unspaced keys: every run of up to max_run characters that holds no
         * space and no character below the lowest one in any such key. */
        if (runs) {
            for (Py_ssize_t i = start; i < end; i++) {
                uint64_t hash = RUN_SEED;
                for (Py_ssize_t n = 1; n <= self->max_run && i + n <= end; n++) {
                    Py_UCS4 c = char_at(text, i + n - 1, kind);
                    if (c == ' ' || c < self->min_run_char)
                        break;
                    hash = step(hash, c);
                    if (self->run_lengths & (1u << n))
                        add(self, seen, lookup(self, hash, RUN_KEY, text, i, n, kind), &sum);
                }
            }
        }
        if (w == 0 || sum > best)
            best = sum;
    }
    return best;
}

static PyObject *
Scorer_score(Scorer *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "score() expects str, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "the InjectionScorer is not initialised");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(arg) < 0) /* a string of the legacy API, made compact */
        return NULL;
#endif
    Text text = {PyUnicode_DATA(arg), PyUnicode_KIND(arg), PyUnicode_GET_LENGTH(arg) + 2};
    /* Sized by the number of spaces (the padding's two included), and the
     * candidates by the spaces one window can hold. */
    size_t spaces_in_text = 2;
    for (Py_ssize_t i = 0; i < text.length - 2; i++)
        spaces_in_text += PyUnicode_READ(text.kind, text.data, i) == ' ';
    size_t window_span = (size_t)(text.length / window_count(text.length, self->window)) + 2 +
                         (size_t)self->overlap;
    size_t most_candidates = (window_span < spaces_in_text ? window_span : spaces_in_text) *
                             (size_t)(self->max_words ? self->max_words : 1);
    size_t seen_words = ((size_t)self->count + 63) / 64;
    char *memory = PyMem_Malloc((seen_words + spaces_in_text) * sizeof(uint64_t) +
                                spaces_in_text * sizeof(Py_ssize_t) +
                                most_candidates * sizeof(Candidate));
    if (memory == NULL)
        return PyErr_NoMemory();
    uint64_t *seen = (uint64_t *)memory;
    uint64_t *word_hashes = seen + seen_words; /* of the token after each space */
    Py_ssize_t *spaces = (Py_ssize_t *)(word_hashes + spaces_in_text);
    Candidate *candidates = (Candidate *)(spaces + spaces_in_text);
    Py_ssize_t space_count = 0;
    uint64_t word = WORD_SEED;
    spaces[space_count++] = 0;
    for (Py_ssize_t i = 1; i < text.length - 1; i++) {
        Py_UCS4 c = PyUnicode_READ(text.kind, text.data, i - 1);
        if (c == ' ') {
            word_hashes[space_count - 1] = word;
            word = WORD_SEED;
            spaces[space_count++] = i;
        }
        else
            word = step(word, c);
    }
    word_hashes[space_count - 1] = word;
    spaces[space_count++] = text.length - 1;
    int runs = self->run_lengths != 0 && PyUnicode_MAX_CHAR_VALUE(arg) >= self->min_run_char;
    long long best;
    switch (text.kind) {
    case PyUnicode_1BYTE_KIND:
        best = best_window(self, &text, spaces, word_hashes, space_count, candidates, seen,
                           seen_words, runs, PyUnicode_1BYTE_KIND);
        break;
    case PyUnicode_2BYTE_KIND:
        best = best_window(self, &text, spaces, word_hashes, space_count, candidates, seen,
                           seen_words, runs, PyUnicode_2BYTE_KIND);
        break;
    default:
        best = best_window(self, &text, spaces, word_hashes, space_count, candidates, seen,
                           seen_words, runs, PyUnicode_4BYTE_KIND);
        break;
    }
    PyMem_Free(memory);
    return PyLong_FromLongLong(self->bias + best);
}

static PyObject *
Scorer_size(Scorer *self, void *closure)
{
    return PyLong_FromSsize_t(self->count);
}

static PyMethodDef Scorer_methods[] = {
    {"score", (PyCFunction)Scorer_score, METH_O,
     "score(normalized_text) -> int\n\nThe bias plus the best window's sum of the weights of "
     "the distinct keys in it, in the model's integer units."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Scorer_getset[] = {
    {"size", (getter)Scorer_size, NULL, "the number of keys", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ScorerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pdp.engine._injection_native.InjectionScorer",
    .tp_doc = PyDoc_STR("InjectionScorer(keys, weights, bias, window, overlap): a model's keys "
                        "(tuple of str) and integer weights, scored per window."),
    .tp_basicsize = sizeof(Scorer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scorer_init,
    .tp_dealloc = (destructor)Scorer_dealloc,
    .tp_methods = Scorer_methods,
    .tp_getset = Scorer_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pdp.engine._injection_native",
    .m_doc = "The learned injection tier's scoring in C (see _injection_model).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__injection_native(void)
{
    if (PyType_Ready(&ScorerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ScorerType);
    if (PyModule_AddObject(m, "InjectionScorer", (PyObject *)&ScorerType) < 0) {
        Py_DECREF(&ScorerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
