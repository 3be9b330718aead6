"""Ray clusters for `--ray` runs: joining one (`connect`), shared by `index` and `eval`."""

from agent.cluster.connect import INSTALL_HINT, connect_ray, import_ray, split_address

__all__ = ["INSTALL_HINT", "connect_ray", "import_ray", "split_address"]
