"""The embedded broker: kombu's filesystem transport, made safe for several processes.

kombu 5.7's transport creates a message file and then writes it, so a consumer polling
the folder can take the file while it is still empty (it then crashes on the JSON). And it
moves taken files to the system temp dir, which may be another filesystem, turning the
move into copy-then-delete, which two consumers can both win. Here a producer writes
to a staging folder and renames the finished file into the queue folder, and a consumer
claims a file by renaming it into a claimed folder beside it: both renames are atomic on one
filesystem, so each message is read whole, by one consumer.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


class Channel(filesystem.Channel):  # type: ignore[misc]
    """Atomic put (write, then rename in) and atomic get (rename out, then read)."""

    def _sibling(self, name: str) -> Path:
        folder = Path(self.data_folder_in).parent / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        filename = f"{round(monotonic() * 1000):015d}_{uuid.uuid4()}.{queue}.msg"
        staging = self._sibling("staging") / filename
        staging.write_bytes(str_to_bytes(dumps(payload)))
        os.replace(staging, Path(self.data_folder_out) / filename)

    def _get(self, queue: str) -> Any:
        wanted = f"{queue}.msg"
        claimed_dir = self._sibling("claimed")
        for filename in sorted(os.listdir(self.data_folder_in)):
            if filename.partition(".")[2] != wanted:
                continue
            claimed = claimed_dir / f"{uuid.uuid4()}-{filename}"
            try:
                os.rename(Path(self.data_folder_in) / filename, claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            payload = claimed.read_bytes()
            claimed.unlink()
            return loads(bytes_to_str(payload))
        raise filesystem.Empty()


class Transport(filesystem.Transport):  # type: ignore[misc]
    Channel = Channel
