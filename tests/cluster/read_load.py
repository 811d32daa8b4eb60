#!/usr/bin/env python3
"""Steady read load for tests/cluster/cluster_test.sh: GETs the PATHS (comma-separated, in turn)
on 127.0.0.1:PORT RATE times a second over one keep-alive connection (a new one after any
error), until STOP_FILE exists. Writes one line per request to OUT_FILE:
"<unix time at send> <status or 0 for no answer>".
Usage: read_load.py PORT PATHS TOKEN RATE OUT_FILE STOP_FILE"""
import http.client
import os
import sys
import time

port, paths, token, rate, out_path, stop_path = sys.argv[1:7]
paths = paths.split(",")
sent_count = 0
gap = 1.0 / float(rate)
conn = None
with open(out_path, "w", buffering=1) as out:
    next_at = time.time()
    while not os.path.exists(stop_path):
        sent = time.time()
        status = 0
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
            path = paths[sent_count % len(paths)]
            sent_count += 1
            conn.request("GET", path, headers={"Authorization": "Bearer " + token})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
        out.write("%.3f %d\n" % (sent, status))
        next_at += gap
        time.sleep(max(0.0, next_at - time.time()))
