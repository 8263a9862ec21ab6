#!/usr/bin/env python3
"""The functions of the bridge binary that ran, from callgrind dumps made with
--demangle=no, hottest first: the lld symbol ordering file (see build.rs).
Usage: order.py BINARY-NAME DUMP..."""
import re, sys, collections
binobj = sys.argv[1]  # object name substring
cost = collections.Counter(); names = {}; seen = []
for f in sys.argv[2:]:
    obs = {}; fns = {}; cur_ob = None; cur_fn = None; cfn_ob = None; in_call = False
    for line in open(f, errors="replace"):
        m = re.match(r'^(ob|fl|fi|fe|fn|cob|cfi|cfn)=\((\d+)\)(?: (.*))?$', line.rstrip('\n'))
        if m:
            k, i, name = m.groups()
            table = obs if k in ("ob", "cob") else fns if k in ("fn", "cfn") else None
            if table is not None and name is not None: table[i] = name
            if k == "ob": cur_ob = obs.get(i)
            elif k == "cob": cfn_ob = obs.get(i)
            elif k == "fn": cur_fn = fns.get(i); cfn_ob = None
            elif k == "cfn":
                n = fns.get(i)
                o = cfn_ob or cur_ob
                if o and binobj in o and n and n not in cost: cost[n] += 0
            continue
        if line.startswith("calls="): in_call = True; continue
        if line[:1].isdigit() or line[:1] in "+-*":
            if in_call: in_call = False; continue
            parts = line.split()
            if len(parts) >= 2 and cur_ob and binobj in cur_ob and cur_fn:
                try: cost[cur_fn] += int(parts[1])
                except ValueError: pass
agg = collections.Counter()
for n, c in cost.items(): agg[re.sub(r"'\d+$", "", n)] += c
cost = agg
out = [n for n, c in sorted(cost.items(), key=lambda kv: (-kv[1], kv[0])) if not n.startswith("0x")]
sys.stderr.write(f"{len(out)} symbols, {sum(1 for n in cost if n.startswith('0x'))} unnamed\n")
print("\n".join(out))
