"""Stage 3, embed: offline sentence embeddings of answers and segments with a content-addressed cache.

`encode(texts, params, cache_dir)` is what other stages call; `stage.run` embeds a batch folder.
"""

from pipeline.embed.core import EncodeStats, encode, encode_with_stats

__all__ = ["EncodeStats", "encode", "encode_with_stats"]
