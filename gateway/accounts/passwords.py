"""Password hashing with argon2id, off the event loop and with bounded memory.

Each argon2 hash takes tens of milliseconds and 64 MiB by default, so hashing runs on a small
pool of its own: the loop keeps serving, and a burst of sign-ups cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and verify passwords on ``workers`` threads."""

    def __init__(self, workers: int = 4) -> None:
        self._hasher = PasswordHasher()  # argon2id with the library's current recommended costs
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._dummy_hash: str | None = None

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def hash(self, password: str) -> str:
        """The argon2id hash to store for ``password``."""
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``."""
        return await self._run(self._verify_blocking, stored_hash, password)

    def _verify_blocking(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify_nothing(self, password: str) -> None:
        """Spend the time of one verification, so an unknown email answers as slowly as a known one."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("not-a-real-password")
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with weaker parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        """Stop the hashing threads once the running hashes finished."""
        self._executor.shutdown(wait=True)
