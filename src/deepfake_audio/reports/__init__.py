"""Reports over scores or audits: compare, evaluate, predict, fuse, audit."""
