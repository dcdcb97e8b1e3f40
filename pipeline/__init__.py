"""pipeline: chunked streams from SFrames into batches on a device (issue 5)."""
