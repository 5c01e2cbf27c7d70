/* status_page: the page GET / serves (DESIGN section 3d), embedded at build time from
 * status.html by embed_page.py (private to src/service).
 *
 * One self-contained HTML page: inline style, inline SVG drawn by an inline script that
 * reads the JSON endpoints (/model, /drift, /retrain, /models, /metrics) every 5 s. It shows
 * aggregates only, never a record. status_page_csp allows exactly its inline style and
 * script (by SHA-256) and fetches to the daemon itself.
 */
#pragma once

#include <stddef.h>

extern const unsigned char status_page_html[];
extern const size_t status_page_len;
extern const char status_page_csp[];
