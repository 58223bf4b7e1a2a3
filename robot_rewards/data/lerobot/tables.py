"""numpy <-> Arrow columns in the shapes LeRobot's reader (Hugging Face `datasets`) casts to.

A (T, D) vector feature is a fixed-size list (datasets' `List(length=D)`), an (T, H, W) image
array a list of lists (`Array2D`), a (T,) scalar a plain column. Files also carry datasets'
schema metadata ("huggingface") so `datasets` alone reads them with the right types.
"""

from __future__ import annotations

import json

import numpy as np

from robot_rewards.core.optional import require

# pyarrow comes with the optional `lerobot` extra (setup.py); only these modules use it


def _pa():
    import pyarrow as pa  # optional: the `lerobot` extra; a clear error where it is missing

    return pa


def require_pyarrow() -> None:
    """MissingDependencyError saying what to install when pyarrow (the `lerobot` extra) is missing."""
    require("pyarrow", "lerobot", "reading and writing LeRobot datasets")


def column(values: np.ndarray, feature: dict):
    """The Arrow array of one feature's (T, *shape) values."""
    pa = _pa()
    v = np.ascontiguousarray(values)
    shape = tuple(feature["shape"])
    typ = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    if shape == (1,):
        return pa.array(v.reshape(-1).astype(feature["dtype"]), type=typ)
    flat = pa.array(v.reshape(-1).astype(feature["dtype"]), type=typ)
    if len(shape) == 1:
        return pa.FixedSizeListArray.from_arrays(flat, shape[0])
    # nested variable-size lists, innermost dimension first (datasets' ArrayND storage)
    arr = flat
    n = v.size
    for dim in reversed(shape):
        n //= dim
        arr = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * dim), arr)
    return arr


def to_numpy(col, feature: dict) -> np.ndarray:
    """(T, *shape) values of an Arrow column of one feature (any nesting of lists)."""
    pa = _pa()
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    n = len(arr)
    while pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type) or pa.types.is_large_list(arr.type):
        arr = arr.flatten()
    out = arr.to_numpy(zero_copy_only=False)
    shape = tuple(feature["shape"])
    return out.reshape(n, *shape) if shape != (1,) else out.reshape(n)


def hf_feature(feature: dict) -> dict:
    """datasets' serialised feature type of one of our feature entries."""
    shape = tuple(feature["shape"])
    if shape == (1,):
        return {"dtype": feature["dtype"], "_type": "Value"}
    if len(shape) == 1:
        return {"feature": {"dtype": feature["dtype"], "_type": "Value"}, "length": shape[0], "_type": "List"}
    return {"shape": list(shape), "dtype": feature["dtype"], "_type": f"Array{len(shape)}D"}


def table(columns: dict[str, object], features: dict[str, dict]):
    """An Arrow table of `columns` with datasets' metadata for `features`."""
    pa = _pa()
    t = pa.table(columns)
    meta = {"info": {"features": {k: hf_feature(features[k]) for k in columns}}}
    return t.replace_schema_metadata({"huggingface": json.dumps(meta)})


def tasks_table(tasks: list[str]):
    """meta/tasks.parquet: the task text is the pandas index, task_index its one column."""
    pa = _pa()
    t = pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)),
                  "__index_level_0__": pa.array(tasks, type=pa.large_string())})
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "str",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": None, "field_name": "__index_level_0__", "pandas_type": "object",
                     "numpy_type": "str", "metadata": None}],
        "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0"}
    return t.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})


def write_parquet(path, tbl) -> None:
    import pyarrow.parquet as pq  # optional: the `lerobot` extra

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, path, compression="snappy")


def read_parquet(path, filters=None):
    import pyarrow.parquet as pq  # optional: the `lerobot` extra

    return pq.read_table(path, filters=filters)


def read_parquet_folder(folder):
    """Every chunk-*/file-*.parquet under `folder`, concatenated in file order."""
    import pyarrow as pa  # optional: the `lerobot` extra

    paths = sorted(folder.glob("*/*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no parquet files under {folder}")
    return pa.concat_tables([read_parquet(p) for p in paths], promote_options="default")
