// Imported first by main.ts, before anything touches libuv's thread pool (which reads this variable once, when it
// starts). sharp's image work runs in that pool; with its default of 4 threads, four files processed at once would
// leave none for the file system calls of uploads, downloads and `/ready`, and the service would look dead to its
// probes while it is busy. An operator's own value wins.
process.env.UV_THREADPOOL_SIZE ??= '16';
