#!/usr/bin/env python3
"""The record processor the KCL MultiLangDaemon runs in the KCL tests (one
process per shard lease): it appends every user record it is handed, each
checkpoint it made and each lifecycle event, as JSON lines to the file named
by $KCL_OUT, synced before it answers the daemon, so the test sees exactly
what the application saw, in order, even if the worker is killed."""

import json
import os

from amazon_kclpy import kcl
from amazon_kclpy.checkpoint_error import CheckpointError
from amazon_kclpy.v3 import processor

OUT = os.environ["KCL_OUT"]
WORKER = os.environ.get("KCL_WORKER", "")


def emit(**event) -> None:
    event["worker"] = WORKER
    with open(OUT, "a") as out:
        out.write(json.dumps(event) + "\n")
        out.flush()
        os.fsync(out.fileno())


class Recorder(processor.RecordProcessorBase):
    shard = ""

    def initialize(self, initialize_input):
        self.shard = initialize_input.shard_id
        emit(event="initialize", shard=self.shard, seq=initialize_input.sequence_number,
             sub=initialize_input.sub_sequence_number)

    def process_records(self, process_records_input):
        last = None
        for record in process_records_input.records:
            emit(event="record", shard=self.shard, seq=record.sequence_number,
                 sub=record.sub_sequence_number, pk=record.partition_key,
                 data=record.binary_data.decode("utf-8", "replace"))
            last = record
        if last is not None:
            self.checkpoint(process_records_input.checkpointer, last.sequence_number, last.sub_sequence_number)

    def checkpoint(self, checkpointer, seq=None, sub=None):
        # A checkpoint refused (the lease was lost meanwhile) is an event the
        # test may look at, not a crash of the processor.
        try:
            checkpointer.checkpoint(seq, sub)
        except CheckpointError as err:
            emit(event="checkpoint_failed", shard=self.shard, seq=seq, sub=sub, error=str(err))
            return
        emit(event="checkpoint", shard=self.shard, seq=seq, sub=sub)

    def lease_lost(self, lease_lost_input):
        emit(event="lease_lost", shard=self.shard)

    def shard_ended(self, shard_ended_input):
        emit(event="shard_ended", shard=self.shard)
        self.checkpoint(shard_ended_input.checkpointer)

    def shutdown_requested(self, shutdown_requested_input):
        emit(event="shutdown_requested", shard=self.shard)
        self.checkpoint(shutdown_requested_input.checkpointer)


if __name__ == "__main__":
    kcl.KCLProcess(Recorder()).run()
