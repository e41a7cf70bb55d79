# One image for every AIVA service; the container's command picks the service (see docker-compose.yml).
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/* && npm install -g pnpm@10.34.9
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml tsconfig.json ./
COPY shared/package.json shared/
COPY gateway/package.json gateway/
COPY orchestrator/package.json orchestrator/
COPY subgraphs/users/package.json subgraphs/users/
COPY subgraphs/auth/package.json subgraphs/auth/
COPY subgraphs/ai/package.json subgraphs/ai/
COPY subgraphs/media/package.json subgraphs/media/
COPY subgraphs/notifications/package.json subgraphs/notifications/
COPY tests/package.json tests/
RUN pnpm install --frozen-lockfile
COPY . .
RUN pnpm build
# The ONNX runtime of the local embedder (AI_LOCAL_MODEL_DIR) ships binaries for every OS: keep Linux's (~220 MB less).
RUN find node_modules/.pnpm -maxdepth 6 -path '*/onnxruntime-node/bin/napi-v*/*' -type d \
  \( -name darwin -o -name win32 \) -prune -exec rm -rf {} +

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 DATA_DIR=/data
WORKDIR /app
COPY --from=build /app /app
# The ffmpeg and ffprobe binaries the media subgraph ships through npm: executable by the `node` user too.
RUN find /app/node_modules/.pnpm -path '*-installer+linux-*' -type f \( -name ffmpeg -o -name ffprobe \) \
  -exec chmod 755 {} +
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# Default: everything in one process (like `pnpm start`); compose runs each service on its own.
CMD ["node", "orchestrator/dist/launch/main.js"]
