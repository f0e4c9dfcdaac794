# The calldata agent worker: `node worker/main.ts start` on Node.js 24 (runs TypeScript directly
# by type stripping; no build step). Built by `cdk deploy` for the ECS service (linux/arm64), or:
#   docker build -t calldata-worker . && docker run --env-file .env calldata-worker
FROM node:24-slim AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
# Production dependencies only; native modules (@livekit/rtc-node) come as prebuilt per-platform packages.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY functions ./functions
COPY worker ./worker
USER node
CMD ["node", "worker/main.ts", "start"]
