"""The embedded durable log: topics of partitioned, append-only segment files on local disk.

It is streamcore's default broker on one machine: both source and sink, behind the
same interfaces as Kafka (`streamcore.io.transport`). See `format` for the bytes on
disk, `partition` for appending and reading, and `topics` for the directory layout.
"""

from streamcore.io.log.partition import PartitionReader, PartitionWriter
from streamcore.io.log.topics import EmbeddedLog, TopicConfig

__all__ = ["EmbeddedLog", "PartitionReader", "PartitionWriter", "TopicConfig"]
