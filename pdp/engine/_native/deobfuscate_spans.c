/* Where the de-obfuscation readings of pdp/engine/_deobfuscate.py edit or
 * decode a text, found in one pass each in C. The same spans as that
 * module's RE2 patterns give (they are the reference and the fallback):
 *
 *   split_words     _SPLIT_WORD: words split by separators ("i.g.n.o.r.e")
 *   spaced_letters  group 1 of _SPACED_LETTERS: single letters written apart
 *   leet_words      _LEET_CANDIDATE: words holding a leet character, of
 *                   which two or more characters are letters
 *   base64_spans    _BASE64 over UTF-8 bytes: runs of the base64 alphabets,
 *                   but for those whose letters are all of one case
 *
 * Each pattern's classes are disjoint enough that its leftmost-first match
 * is a maximal run (see each function), so the scan needs no backtracking.
 * The RE2 wrapper builds a Python match object per match; code and
 * documentation hold hundreds of identifiers and hyphenated words per KB,
 * and these return only (start, end) pairs, in characters (bytes for
 * base64_spans). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static inline int
is_letter(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int
is_alnum(Py_UCS4 c)
{
    return is_letter(c) || (c >= '0' && c <= '9');
}

/* _SEPARATORS: - . _ * · • ~ | \ ^ */
static inline int
is_separator(Py_UCS4 c)
{
    switch (c) {
    case '-': case '.': case '_': case '*': case '~': case '|': case '\\': case '^':
    case 0x00B7: case 0x2022:
        return 1;
    default:
        return 0;
    }
}

/* The separators words do not hold: * · • ~ | \ ^ */
static inline int
is_rare_separator(Py_UCS4 c)
{
    return c != '-' && c != '.' && c != '_' && is_separator(c);
}

/* [\w@$|!+€] (RE2's \w is ASCII) */
static inline int
is_leet_word_char(Py_UCS4 c)
{
    return is_alnum(c) || c == '_' || c == '@' || c == '$' || c == '|' || c == '!' || c == '+'
        || c == 0x20AC;
}

/* [0134579@$|+€8!] */
static inline int
is_leet(Py_UCS4 c)
{
    switch (c) {
    case '0': case '1': case '3': case '4': case '5': case '7': case '9': case '8':
    case '@': case '$': case '|': case '+': case '!': case 0x20AC:
        return 1;
    default:
        return 0;
    }
}

static int
append_span(PyObject *list, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *span = Py_BuildValue("(nn)", start, end);
    if (span == NULL)
        return -1;
    int failed = PyList_Append(list, span);
    Py_DECREF(span);
    return failed;
}

typedef int (*char_test)(Py_UCS4);

/* After a run of letters ending at `end`: the end of the longest chain of
 * (separators, letters) pairs, and how many pairs it holds. */
static Py_ssize_t
chain_end(int kind, const void *data, Py_ssize_t length, Py_ssize_t end, char_test separator,
          int *pairs)
{
    *pairs = 0;
    for (;;) {
        Py_ssize_t after_separators = end;
        while (after_separators < length && separator(PyUnicode_READ(kind, data, after_separators)))
            after_separators++;
        if (after_separators == end)
            return end;
        Py_ssize_t after_letters = after_separators;
        while (after_letters < length && is_letter(PyUnicode_READ(kind, data, after_letters)))
            after_letters++;
        if (after_letters == after_separators)
            return end;
        (*pairs)++;
        end = after_letters;
    }
}

static int
separator_test(Py_UCS4 c)
{
    return is_separator(c);
}

static int
rare_separator_test(Py_UCS4 c)
{
    return is_rare_separator(c);
}

/* The characters of ``text`` for the span search ``name``: 0, or -1 with
 * TypeError when it is not a str. */
static int
read_text(PyObject *text, const char *name, int *kind, const void **data, Py_ssize_t *length)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "%s: text must be str", name);
        return -1;
    }
    if (PyUnicode_READY(text) < 0) /* a string of the legacy API, made compact */
        return -1;
    *kind = PyUnicode_KIND(text);
    *data = PyUnicode_DATA(text);
    *length = PyUnicode_GET_LENGTH(text);
    return 0;
}

/* [a-zA-Z]+(?:[SEP]+[a-zA-Z]+){2,} | [a-zA-Z]+(?:[*·•~|\\^]+[a-zA-Z]+)+
 * Letters and separators are disjoint, so greedy matching from the start of
 * a run of letters takes the longest chain of (separators, letters) pairs;
 * a shorter chain or a start inside the run cannot do better. */
static PyObject *
split_words(PyObject *module, PyObject *text)
{
    (void)module;
    int kind;
    const void *data;
    Py_ssize_t length;
    if (read_text(text, "split_words", &kind, &data, &length) < 0)
        return NULL;
    PyObject *spans = PyList_New(0);
    if (spans == NULL)
        return NULL;
    Py_ssize_t i = 0;
    while (i < length) {
        if (!is_letter(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t run_end = i + 1;
        while (run_end < length && is_letter(PyUnicode_READ(kind, data, run_end)))
            run_end++;
        int pairs;
        Py_ssize_t end = chain_end(kind, data, length, run_end, separator_test, &pairs);
        int matched = pairs >= 2;
        if (!matched) {
            end = chain_end(kind, data, length, run_end, rare_separator_test, &pairs);
            matched = pairs >= 1;
        }
        if (matched) {
            if (append_span(spans, i, end) < 0) {
                Py_DECREF(spans);
                return NULL;
            }
            i = end;
        }
        else {
            i = run_end;
        }
    }
    return spans;
}

/* Group 1 of (?:^|[^a-zA-Z0-9])((?:[a-zA-Z][ \t]){2,}[a-zA-Z])(?:[^a-zA-Z0-9]|$)
 * from letter `start`: its end, and in *match_end the end of the whole
 * match (the character after the group is consumed); -1 when none. */
static Py_ssize_t
spaced_group(int kind, const void *data, Py_ssize_t length, Py_ssize_t start,
             Py_ssize_t *match_end)
{
    if (start >= length || !is_letter(PyUnicode_READ(kind, data, start)))
        return -1;
    Py_ssize_t last = start; /* the chain's last letter */
    Py_ssize_t pairs = 0;
    while (last + 2 < length) {
        Py_UCS4 gap = PyUnicode_READ(kind, data, last + 1);
        if ((gap != ' ' && gap != '\t') || !is_letter(PyUnicode_READ(kind, data, last + 2)))
            break;
        last += 2;
        pairs++;
    }
    if (last + 1 >= length || !is_alnum(PyUnicode_READ(kind, data, last + 1))) {
        if (pairs < 2)
            return -1;
        *match_end = last + 1 < length ? last + 2 : length;
        return last + 1;
    }
    /* The last letter is followed by a digit or a letter: the chain ends one
     * letter earlier, before the space or tab, which the match consumes. */
    if (pairs - 1 < 2)
        return -1;
    *match_end = last;
    return last - 1;
}

static PyObject *
spaced_letters(PyObject *module, PyObject *text)
{
    (void)module;
    int kind;
    const void *data;
    Py_ssize_t length;
    if (read_text(text, "spaced_letters", &kind, &data, &length) < 0)
        return NULL;
    PyObject *spans = PyList_New(0);
    if (spans == NULL)
        return NULL;
    Py_ssize_t i = 0;
    while (i < length) {
        Py_ssize_t group_start = -1, group_end = -1, match_end = 0;
        if (i == 0) {
            group_end = spaced_group(kind, data, length, 0, &match_end);
            group_start = 0;
        }
        if (group_end < 0 && !is_alnum(PyUnicode_READ(kind, data, i))) {
            group_end = spaced_group(kind, data, length, i + 1, &match_end);
            group_start = i + 1;
        }
        if (group_end < 0) {
            i++;
            continue;
        }
        if (append_span(spans, group_start, group_end) < 0) {
            Py_DECREF(spans);
            return NULL;
        }
        i = match_end;
    }
    return spans;
}

/* [\w@$|!+€]*(?:[a-zA-Z][leet]|[leet][a-zA-Z])[\w@$|!+€]*
 * Every class is inside [\w@$|!+€], so a match is a whole run of those
 * characters that holds a letter next to a leet character. Kept when two or
 * more of its characters are letters ("v3" is not a word to respell). */
static PyObject *
leet_words(PyObject *module, PyObject *text)
{
    (void)module;
    int kind;
    const void *data;
    Py_ssize_t length;
    if (read_text(text, "leet_words", &kind, &data, &length) < 0)
        return NULL;
    PyObject *spans = PyList_New(0);
    if (spans == NULL)
        return NULL;
    Py_ssize_t i = 0;
    while (i < length) {
        if (!is_leet_word_char(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        int found = 0;
        Py_UCS4 previous = PyUnicode_READ(kind, data, i);
        Py_ssize_t letters = is_letter(previous);
        for (i++; i < length; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (!is_leet_word_char(c))
                break;
            letters += is_letter(c);
            if (!found
                && ((is_letter(previous) && is_leet(c)) || (is_leet(previous) && is_letter(c))))
                found = 1;
            previous = c;
        }
        if (found && letters >= 2 && append_span(spans, start, i) < 0) {
            Py_DECREF(spans);
            return NULL;
        }
    }
    return spans;
}

static inline int
is_base64_standard(unsigned char c)
{
    return is_alnum(c) || c == '+' || c == '/';
}

static inline int
is_base64_urlsafe(unsigned char c)
{
    return is_alnum(c) || c == '_' || c == '-';
}

#define BASE64_MIN 16

/* [A-Za-z0-9+/]{16,}={0,2} | [A-Za-z0-9_-]{16,}={0,2} over bytes. From a
 * position, each alternative is the run of its alphabet there (greedy, and
 * "=" is in neither); where both runs are short, so are both from every
 * position up to the end of the letters and digits that start them. */
static PyObject *
base64_spans(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t length = view.len;
    PyObject *spans = PyList_New(0);
    if (spans == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t i = 0;
    while (i < length) {
        Py_ssize_t end = i;
        while (end < length && is_base64_standard(data[end]))
            end++;
        if (end - i < BASE64_MIN) {
            end = i;
            while (end < length && is_base64_urlsafe(data[end]))
                end++;
        }
        if (end - i >= BASE64_MIN) {
            for (int padding = 0; padding < 2 && end < length && data[end] == '='; padding++)
                end++;
            /* Kept unless its letters are all of one case (bytes.islower()
             * or bytes.isupper()): plain words, slugs and identifiers. */
            Py_ssize_t lower = 0, upper = 0;
            for (Py_ssize_t k = i; k < end; k++) {
                lower += data[k] >= 'a' && data[k] <= 'z';
                upper += data[k] >= 'A' && data[k] <= 'Z';
            }
            int one_case = (lower > 0) != (upper > 0);
            if (!one_case && append_span(spans, i, end) < 0) {
                Py_DECREF(spans);
                PyBuffer_Release(&view);
                return NULL;
            }
            i = end;
            continue;
        }
        Py_ssize_t skip = i;
        while (skip < length && is_alnum(data[skip]))
            skip++;
        i = skip > i ? skip : i + 1;
    }
    PyBuffer_Release(&view);
    return spans;
}

static PyMethodDef methods[] = {
    {"split_words", split_words, METH_O, "Spans of words split by separators."},
    {"spaced_letters", spaced_letters, METH_O, "Spans of single letters written apart."},
    {"leet_words", leet_words, METH_O, "Spans of words holding a leet character and two letters."},
    {"base64_spans", base64_spans, METH_O, "Spans of base64 alphabet runs in both cases."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "pdp.engine._deobfuscate_native",
    "Spans the de-obfuscation readings edit or decode (pdp/engine/_deobfuscate.py).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__deobfuscate_native(void)
{
    return PyModule_Create(&module);
}
