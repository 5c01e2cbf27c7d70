#!/usr/bin/env python3
"""Embeds the status page in the daemon: embed_page.py PAGE.html OUT.c

Writes status_page_html (the page's bytes) and status_page_csp: a Content-Security-Policy
that allows exactly the page's one inline <style> and one inline <script>, by their
SHA-256, and fetches to the daemon itself; nothing else (no external URL, font or frame).
"""
import base64
import hashlib
import re
import sys


def only(pattern, text, what):
    found = re.findall(pattern, text, re.S)
    if len(found) != 1:
        sys.exit("%s: expected exactly one inline %s, found %d" % (sys.argv[1], what, len(found)))
    return found[0]


def sha256(text):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def c_bytes(data):
    """data as a C initializer (a string literal would pass C11's 4095-byte minimum)."""
    rows = [", ".join("0x%02x" % b for b in data[i:i + 16]) for i in range(0, len(data), 16)]
    return "{\n    " + ",\n    ".join(rows + ["0x00"]) + "\n}"


def main():
    page = open(sys.argv[1], "rb").read()
    text = page.decode()
    style = only(r"<style>(.*?)</style>", text, "<style>")
    script = only(r"<script>(.*?)</script>", text, "<script>")
    if re.search(r"(src|href)\s*=\s*[\"'](?!data:)", text) or "@import" in text:
        sys.exit("%s: the page must not load anything (src=, href=, @import)" % sys.argv[1])
    csp = ("default-src 'none'; script-src %s; style-src %s; connect-src 'self'; img-src data:; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
           % (sha256(script), sha256(style)))
    with open(sys.argv[2], "w") as f:
        f.write("/* Generated from status.html by embed_page.py: do not edit. */\n")
        f.write('#include "status_page.h"\n\n')
        f.write("const unsigned char status_page_html[] = %s;\n" % c_bytes(page))
        f.write("const size_t status_page_len = %d;\n" % len(page))
        f.write('const char status_page_csp[] = "%s";\n' % csp)


main()
