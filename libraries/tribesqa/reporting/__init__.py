"""What a failure leaves for QA: diff tables, HTML reports, per-node snapshots, the fleet matrix."""
