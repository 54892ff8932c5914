"""Does Beam's multi-processing DirectRunner lose elements at a TFDS build's scale, without TFDS?

Creates N elements, gives each a random payload of SIZE bytes, groups them into 16 keys
(as TFDS' Beam writer groups serialised examples by shard) and counts what comes out.
BENCHMARKS.md ("Dataset builds on Beam") reports a run: 20,000 x 80 kB, 2 workers, nothing lost.

Usage::

    python benchmarks/beam_groupbykey_check.py 20000 80000 2    # N, SIZE, workers
"""
from __future__ import annotations

import os
import sys
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def main(num: int, size: int, workers: str) -> None:
    def payload(index):
        yield index % 16, (index, os.urandom(size))

    def count(shard_items):
        yield len(list(shard_items[1]))

    options = PipelineOptions([f"--direct_num_workers={workers}",
                               "--direct_running_mode=multi_processing"])
    start = time.time()
    with beam.Pipeline(options=options) as pipeline:
        (pipeline | beam.Create(list(range(num))) | beam.FlatMap(payload) | beam.GroupByKey()
         | beam.FlatMap(count) | beam.CombineGlobally(sum)
         | beam.Map(lambda total: print(f"RESULT n={num} total={total} lost={num - total}",
                                        flush=True)))
    print(f"seconds {time.time() - start:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
