"""Data: the IDX reader, the data set table, download and cache, and batching."""

from digitnet.data.datasets import Dataset, load_dataset, load_fashion_mnist, load_mnist

__all__ = ["Dataset", "load_dataset", "load_fashion_mnist", "load_mnist"]
