"""``codesign workloads list|show``: the network zoo and any workload file (ONNX, JSON, net.config)."""
from __future__ import annotations

from models import zoo
from models.importers import load_workload

from ._common import MAX_BATCH, MAX_RESOLUTION, MAX_SEQ_LEN, emit_json, int_in


def _list(args) -> int:
    rows = []
    for name in zoo.names():
        net = zoo.get_network(name)
        rows.append({"name": name, "resolution": net.resolution, "seq_len": net.meta.get("seq_len"),
                     "layers": len(net), "unique_shapes": len(net.unique_shapes()),
                     "macs": net.macs, "params": net.params})
    if args.json:
        emit_json(rows)
        return 0
    print(f"{'name':<20} {'input':>8} {'layers':>6} {'shapes':>6} {'GMACs':>9} {'Mparams':>8}")
    for r in rows:
        size = f"{r['resolution']}px" if r["resolution"] else f"seq {r['seq_len']}"
        print(f"{r['name']:<20} {size:>8} {r['layers']:>6} {r['unique_shapes']:>6} "
              f"{r['macs'] / 1e9:>9.3f} {r['params'] / 1e6:>8.2f}")
    return 0


def _show(args) -> int:
    net = load_workload(args.workload, resolution=args.resolution, batch=args.batch, seq_len=args.seq_len)
    if args.json:
        emit_json(net.to_dict())
        return 0
    width = max(len("layer"), *(len(l.name) for l in net.layers))
    head = "  ".join(f"{d:>5}" for d in ("G", "N", "K", "C", "P", "Q", "R", "S", "str"))
    size = (f"{net.resolution}x{net.resolution}" if net.resolution
            else f"sequence {net.meta['seq_len']}" if net.meta.get("seq_len") else "-")
    print(f"{net.name}  (input {size}, batch {net.meta.get('batch', '-')})")
    print(f"{'layer':<{width}}  {'op':<6}  {head}  {'MACs':>15}  {'params':>11}")
    for l in net.layers:
        dims = "  ".join(f"{v:>5}" for v in (*l.bounds, l.stride))
        print(f"{l.name:<{width}}  {l.op:<6}  {dims}  {l.macs:>15,}  {l.params:>11,}")
    aux_elems = sum(a.in_elems + a.out_elems for a in net.aux)
    print(f"total: {len(net)} layers, {len(net.unique_shapes())} unique shapes, {net.macs:,} MACs "
          f"({net.macs / 1e9:.3f} G), {net.params:,} params; {len(net.aux)} non-MAC ops moving "
          f"{aux_elems:,} elements")
    return 0


def register(sub) -> None:
    p = sub.add_parser("workloads", help="list the network zoo or show a network's layers")
    s = p.add_subparsers(dest="action", metavar="ACTION")
    s.required = True
    pl = s.add_parser("list", help="list the zoo networks with their MACs and parameters")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_list)
    ps = s.add_parser("show", help="show a zoo network (NAME) or a workload file (.onnx, network JSON, net.config)")
    ps.add_argument("workload", metavar="NAME|PATH")
    ps.add_argument("--resolution", type=int_in(1, MAX_RESOLUTION), default=None,
                    help="input size (zoo networks and net.config)")
    ps.add_argument("--seq-len", type=int_in(1, MAX_SEQ_LEN), default=None, help="sequence length (bert_base_layer)")
    ps.add_argument("--batch", type=int_in(1, MAX_BATCH), default=1, help="batch size (zoo networks)")
    ps.add_argument("--json", action="store_true")
    ps.set_defaults(func=_show)
