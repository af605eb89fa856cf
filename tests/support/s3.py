"""The SeaweedFS S3 server for tests; it lives in api.local_s3 because the demo uses it too."""

from api.local_s3 import LocalS3Server, find_weed

__all__ = ["LocalS3Server", "find_weed"]
