/* admin_page.h - the admin dashboard (web-admin/index.html and admin.js) as
 * bytes in the binary. CMakeLists.txt generates their definitions at
 * configure time (<build>/generated/admin_page.c); admin.c serves them on
 * the admin listener only. */
#ifndef PARLEY_ADMIN_PAGE_H
#define PARLEY_ADMIN_PAGE_H
#include <stddef.h>

extern const unsigned char admin_index_html[]; /* the file's bytes and a NUL */
extern const size_t admin_index_html_len;      /* without the NUL */
extern const unsigned char admin_js[];
extern const size_t admin_js_len;

#endif
