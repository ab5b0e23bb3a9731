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
 * code points, built once per model. Scoring hashes each run of up to
 * max_words tokens from every space of a window (one pass over the words,
 * extended word by word), and each run of characters from the lowest
 * code point of any unspaced key up. Weights are integers (units of 1e-4),
 * so the sum does not depend on the order keys are found in. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define WORD_KEY 0
#define RUN_KEY 1
#define MAX_RUN 8
#define WORD_SEED 0xcbf29ce484222325ULL
#define RUN_SEED 0x84222325cbf29ce4ULL

typedef struct {
    uint64_t hash;
    Py_ssize_t start; /* of the key's text in the pool (word keys without padding) */
    Py_ssize_t length;
    long long weight;
    int kind;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *entries;   /* one per key, in the model's order */
    Py_ssize_t count;
    Py_ssize_t *table; /* entry index + 1; 0: empty */
    size_t mask;
    Py_UCS4 *pool;
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

static inline size_t
slot_of(uint64_t hash, size_t mask)
{
    hash ^= hash >> 31;
    hash *= 0x9e3779b97f4a7c15ULL;
    return (size_t)(hash >> 17) & mask;
}

/* The index of the key of ``kind`` whose text is text[start:start+length]
 * (hashed to ``hash``), or -1. */
static inline Py_ssize_t
lookup(const Scorer *self, uint64_t hash, int kind, const Py_UCS4 *text, Py_ssize_t start,
       Py_ssize_t length)
{
    size_t slot = slot_of(hash, self->mask);
    for (;;) {
        Py_ssize_t stored = self->table[slot];
        if (stored == 0)
            return -1;
        const Entry *entry = &self->entries[stored - 1];
        if (entry->hash == hash && entry->kind == kind && entry->length == length &&
            memcmp(self->pool + entry->start, text + start, (size_t)length * sizeof(Py_UCS4)) == 0)
            return stored - 1;
        slot = (slot + 1) & self->mask;
    }
}

static void
Scorer_dealloc(Scorer *self)
{
    PyMem_Free(self->entries);
    PyMem_Free(self->table);
    PyMem_Free(self->pool);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Checks the shape of ``key`` and fills in its entry's kind, text and
 * (for word keys) number of words. */
static int
classify(PyObject *key, Py_ssize_t index, Entry *entry, Py_ssize_t *words)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(key);
    int kind = PyUnicode_KIND(key);
    const void *data = PyUnicode_DATA(key);
    Py_ssize_t spaces = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        if (PyUnicode_READ(kind, data, i) != ' ')
            continue;
        spaces++;
        if (i > 0 && i < length - 1 && PyUnicode_READ(kind, data, i - 1) == ' ')
            goto bad;
    }
    if (spaces == 0 && length >= 1 && length <= MAX_RUN) {
        entry->kind = RUN_KEY;
        entry->length = length;
        *words = 0;
        return 0;
    }
    if (length >= 3 && PyUnicode_READ(kind, data, 0) == ' ' &&
        PyUnicode_READ(kind, data, length - 1) == ' ' &&
        PyUnicode_READ(kind, data, 1) != ' ' && PyUnicode_READ(kind, data, length - 2) != ' ') {
        entry->kind = WORD_KEY;
        entry->length = length - 2;
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
    if (window < 1 || overlap < 0) {
        PyErr_SetString(PyExc_ValueError, "window must be >= 1 and overlap >= 0");
        return -1;
    }
    Py_ssize_t pool_size = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "features[%zd]: key must be str", i);
            return -1;
        }
        pool_size += PyUnicode_GET_LENGTH(key);
    }
    size_t capacity = 16;
    while (capacity < (size_t)count * 2)
        capacity <<= 1;
    self->entries = PyMem_Calloc((size_t)count + 1, sizeof(Entry));
    self->table = PyMem_Calloc(capacity, sizeof(Py_ssize_t));
    self->pool = PyMem_Malloc(((size_t)pool_size + 1) * sizeof(Py_UCS4));
    if (self->entries == NULL || self->table == NULL || self->pool == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->mask = capacity - 1;
    self->count = count;
    self->bias = bias;
    self->window = window;
    self->overlap = overlap;
    self->min_run_char = 0x10FFFF + 1;
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        Entry *entry = &self->entries[i];
        Py_ssize_t words;
        if (classify(key, i, entry, &words) < 0)
            return -1;
        entry->weight = PyLong_AsLongLong(PyTuple_GET_ITEM(weights, i));
        if (entry->weight == -1 && PyErr_Occurred())
            return -1;
        Py_ssize_t offset = entry->kind == WORD_KEY ? 1 : 0;
        if (PyUnicode_AsUCS4(key, self->pool + used,
                             pool_size + 1 - used, 0) == NULL)
            return -1;
        entry->start = used + offset;
        used += PyUnicode_GET_LENGTH(key);
        uint64_t hash = entry->kind == WORD_KEY ? WORD_SEED : RUN_SEED;
        for (Py_ssize_t j = 0; j < entry->length; j++) {
            Py_UCS4 c = self->pool[entry->start + j];
            hash = step(hash, c);
            if (entry->kind == RUN_KEY && c < self->min_run_char)
                self->min_run_char = c;
        }
        entry->hash = hash;
        if (entry->kind == WORD_KEY) {
            if (words > self->max_words)
                self->max_words = words;
        }
        else {
            self->run_lengths |= 1u << entry->length;
            if (entry->length > self->max_run)
                self->max_run = entry->length;
        }
        if (lookup(self, hash, entry->kind, self->pool, entry->start, entry->length) >= 0) {
            PyErr_Format(PyExc_ValueError, "features[%zd]: key %R appears twice", i, key);
            return -1;
        }
        size_t slot = slot_of(hash, self->mask);
        while (self->table[slot] != 0)
            slot = (slot + 1) & self->mask;
        self->table[slot] = i + 1;
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

static PyObject *
Scorer_score(Scorer *self, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "score() expects str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "the InjectionScorer is not initialised");
        return NULL;
    }
    Py_ssize_t inner = PyUnicode_GET_LENGTH(text);
    Py_ssize_t length = inner + 2; /* padded with a space at each end */
    size_t bitmap_words = ((size_t)self->count + 63) / 64;
    size_t bytes = (size_t)length * (sizeof(Py_UCS4) + sizeof(Py_ssize_t)) +
                   bitmap_words * sizeof(uint64_t);
    char *memory = PyMem_Malloc(bytes);
    if (memory == NULL)
        return PyErr_NoMemory();
    uint64_t *seen = (uint64_t *)memory;
    Py_ssize_t *spaces = (Py_ssize_t *)(seen + bitmap_words);
    Py_UCS4 *padded = (Py_UCS4 *)(spaces + length);
    padded[0] = ' ';
    padded[length - 1] = ' ';
    if (inner > 0 && PyUnicode_AsUCS4(text, padded + 1, inner, 0) == NULL) {
        PyMem_Free(memory);
        return NULL;
    }
    Py_ssize_t space_count = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        if (padded[i] == ' ')
            spaces[space_count++] = i;
    }
    int runs = self->run_lengths != 0 && PyUnicode_MAX_CHAR_VALUE(text) >= self->min_run_char;
    Py_ssize_t windows = window_count(length, self->window);
    long long best = 0;
    Py_ssize_t first_space = 0;
    for (Py_ssize_t w = 0; w < windows; w++) {
        Py_ssize_t start = cut(length, w, windows) - self->overlap;
        Py_ssize_t end = cut(length, w + 1, windows);
        if (start < 0)
            start = 0;
        long long sum = 0;
        memset(seen, 0, bitmap_words * sizeof(uint64_t));
        while (first_space < space_count && spaces[first_space] < start)
            first_space++;
        /* Word keys: from each space, the next 1..max_words tokens, while
         * the space after the last one is inside the window. */
        for (Py_ssize_t k = first_space; k < space_count && spaces[k] < end; k++) {
            uint64_t hash = WORD_SEED;
            for (Py_ssize_t n = 1; n <= self->max_words && k + n < space_count &&
                                   spaces[k + n] < end;
                 n++) {
                if (n > 1)
                    hash = step(hash, ' ');
                for (Py_ssize_t i = spaces[k + n - 1] + 1; i < spaces[k + n]; i++)
                    hash = step(hash, padded[i]);
                Py_ssize_t found = lookup(self, hash, WORD_KEY, padded, spaces[k] + 1,
                                          spaces[k + n] - spaces[k] - 1);
                if (found >= 0 && !(seen[found >> 6] & (1ULL << (found & 63)))) {
                    seen[found >> 6] |= 1ULL << (found & 63);
                    sum += self->entries[found].weight;
                }
            }
        }
        /* Unspaced keys: every run of up to max_run characters that holds no
         * space and no character below the lowest one in any such key. */
        if (runs) {
            for (Py_ssize_t i = start; i < end; i++) {
                uint64_t hash = RUN_SEED;
                for (Py_ssize_t n = 1; n <= self->max_run && i + n <= end; n++) {
                    Py_UCS4 c = padded[i + n - 1];
                    if (c == ' ' || c < self->min_run_char)
                        break;
                    hash = step(hash, c);
                    if (!(self->run_lengths & (1u << n)))
                        continue;
                    Py_ssize_t found = lookup(self, hash, RUN_KEY, padded, i, n);
                    if (found >= 0 && !(seen[found >> 6] & (1ULL << (found & 63)))) {
                        seen[found >> 6] |= 1ULL << (found & 63);
                        sum += self->entries[found].weight;
                    }
                }
            }
        }
        if (w == 0 || sum > best)
            best = sum;
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
