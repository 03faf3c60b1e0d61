// The shard map: an SVG picture of the hash-key space (0 to 2^128 - 1, left
// to right) with one row per generation of shards, open shards solid and
// closed ones dashed, and lines from parents to children.
const NS = "http://www.w3.org/2000/svg";
const SPACE = 2n ** 128n;
const WIDTH = 1000, ROW = 46, GAP = 22, PAD = 8;

function el(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// x of a hash key, in the picture's units (BigInt arithmetic: keys are 128-bit).
const x = (key) => PAD + Number((BigInt(key) * BigInt(WIDTH - 2 * PAD) * 1000n) / SPACE) / 1000;

export function shardMap(shards) {
  const byId = new Map(shards.map((s) => [s.ShardId, s]));
  const depth = new Map();
  const depthOf = (s) => {
    if (depth.has(s.ShardId)) return depth.get(s.ShardId);
    depth.set(s.ShardId, 0);
    const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((p) => p && byId.has(p));
    const d = parents.length ? 1 + Math.max(...parents.map((p) => depthOf(byId.get(p)))) : 0;
    depth.set(s.ShardId, d);
    return d;
  };
  shards.forEach(depthOf);
  const rows = Math.max(0, ...depth.values()) + 1;
  const height = rows * (ROW + GAP) + PAD;
  const svg = el("svg", {
    class: "shardmap", viewBox: `0 0 ${WIDTH} ${height}`, role: "img",
    "aria-label": `Shard map: ${shards.length} shards in ${rows} generation${rows > 1 ? "s" : ""}`,
  });
  const box = (s) => {
    const d = depth.get(s.ShardId);
    const x0 = x(s.HashKeyRange.StartingHashKey), x1 = x(BigInt(s.HashKeyRange.EndingHashKey) + 1n);
    return { x0, x1, y: PAD + d * (ROW + GAP) };
  };
  for (const s of shards) {
    const b = box(s);
    for (const p of [s.ParentShardId, s.AdjacentParentShardId]) {
      if (!p || !byId.has(p)) continue;
      const pb = box(byId.get(p));
      svg.append(el("line", { class: "lineage", x1: (pb.x0 + pb.x1) / 2, y1: pb.y + ROW, x2: (b.x0 + b.x1) / 2, y2: b.y }));
    }
  }
  for (const s of shards) {
    const b = box(s);
    const open = !s.SequenceNumberRange.EndingSequenceNumber;
    const g = el("g", { "data-shard": s.ShardId, "data-state": open ? "open" : "closed" });
    const title = `${s.ShardId} (${open ? "open" : "closed"}) hash keys ${s.HashKeyRange.StartingHashKey}–${s.HashKeyRange.EndingHashKey}` +
      (s.ParentShardId ? `, parent ${s.ParentShardId}` : "") + (s.AdjacentParentShardId ? `, adjacent parent ${s.AdjacentParentShardId}` : "");
    g.append(el("title", {}, title));
    g.append(el("rect", { class: open ? "open" : "closed", x: b.x0 + 1, y: b.y, width: Math.max(2, b.x1 - b.x0 - 2), height: ROW, rx: 4 }));
    if (b.x1 - b.x0 > 60) {
      g.append(el("text", { x: b.x0 + 6, y: b.y + 18 }, s.ShardId.replace("shardId-", "#")));
      g.append(el("text", { x: b.x0 + 6, y: b.y + 34 }, open ? "open" : "closed"));
    }
    svg.append(g);
  }
  return svg;
}
