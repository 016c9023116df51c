"""Looking straight into a store's contents, bypassing arrayq, to check what is kept."""

from pathlib import Path

from arrayq.storage.s3 import S3Store


def stored_keys(storage_url: str, prefix: str = "") -> list[str]:
    if storage_url.startswith("file://"):
        root = Path(storage_url.removeprefix("file://"))
        files = (path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
        return sorted(key for key in files if key.startswith(prefix))
    store = S3Store.from_url(storage_url)
    objects = store._client.list_objects(bucket_name=store.bucket, prefix=prefix, recursive=True)
    return sorted(obj.object_name for obj in objects)
