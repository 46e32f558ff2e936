"""One trivial Prefect flow run: Prefect's own cost, against which regflow's is measured."""

from __future__ import annotations

from prefect import flow


@flow(name="trivial")
def trivial() -> int:
    return 1


if __name__ == "__main__":
    trivial()
