/* tokenizer_utf8.c: UTF-8 checks and conversions, Unicode whitespace, and
 * GPT-2's byte-level alphabet.  Hugging Face's tokenizers is written in
 * Rust, so where text is invalid or lossy we follow Rust's rules. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* Length of the valid sequence at s[0..n) (1..4), or 0 when invalid; *err
 * gets the number of bytes Rust's decoder would replace by one U+FFFD. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *err)
{
    unsigned char b = s[0];
    if (b < 0x80)
        return 1;
    size_t width = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3
                 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    *err = 1;
    if (width == 0 || n < 2)
        return 0;
    unsigned char c = s[1];
    int second_ok;
    switch (b) {
    case 0xE0: second_ok = c >= 0xA0 && c <= 0xBF; break;
    case 0xED: second_ok = c >= 0x80 && c <= 0x9F; break;
    case 0xF0: second_ok = c >= 0x90 && c <= 0xBF; break;
    case 0xF4: second_ok = c >= 0x80 && c <= 0x8F; break;
    default: second_ok = c >= 0x80 && c <= 0xBF; break;
    }
    if (!second_ok)
        return 0;
    for (size_t k = 2; k < width; k++) {
        *err = k;
        if (k >= n || (s[k] & 0xC0) != 0x80)
            return 0;
    }
    return width;
}

int utf8_valid(const char *s, size_t n, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII runs, eight bytes at a time */
        while (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, u + i, 8);
            if (v & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        size_t err, k = utf8_seq(u + i, n - i, &err);
        if (k == 0) {
            if (bad_at)
                *bad_at = i;
            return 0;
        }
        i += k;
    }
    return 1;
}

uint32_t utf8_decode(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) {
        *len = 1;
        return u[0];
    }
    if (u[0] < 0xE0) {
        *len = 2;
        return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    }
    if (u[0] < 0xF0) {
        *len = 3;
        return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
           ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
}

size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int unicode_is_whitespace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

char *utf8_lossy(const char *s, size_t n, size_t *n_out)
{
    /* at worst every byte becomes the three bytes of U+FFFD */
    char *out = xmalloc(3 * n + 1);
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t err, k = utf8_seq(u + i, n - i, &err);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += err < n - i ? err : n - i;
        }
    }
    out[o] = '\0';
    *n_out = o;
    return out;
}

/* bytes_to_unicode keeps the printable bytes '!'..'~', 0xA1..0xAC and
 * 0xAE..0xFF as they are and numbers the other 68 from U+0100 in byte
 * order: 0x00..0x20, then 0x7F..0xA0, then 0xAD. */
uint32_t bytelevel_cp(unsigned char b)
{
    if (b <= 0x20)
        return 256u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 162u + b;
    if (b == 0xAD)
        return 323;
    return b;
}

int bytelevel_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 256 && cp <= 288)
        return (int)(cp - 256);
    if (cp >= 289 && cp <= 322)
        return (int)(cp - 162);
    if (cp == 323)
        return 0xAD;
    return -1;
}

int bytelevel_to_raw(const char *tok, size_t len, char **out, size_t *n_out)
{
    char *raw = xmalloc(len + 1);
    size_t i = 0, o = 0;
    while (i < len) {
        size_t k;
        int b = bytelevel_byte(utf8_decode(tok + i, &k));
        if (b < 0) {
            free(raw);
            return -1;
        }
        raw[o++] = (char)b;
        i += k;
    }
    *out = raw;
    *n_out = o;
    return 0;
}
