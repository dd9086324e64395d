# The understudy node image: `docker build -t understudy .`, then
#   docker run understudy node --id n1 --cluster main --nats nats://... --etcd http://...
# (docker-compose.yml runs three of them). The first stage compiles the TypeScript to dist/;
# the image holds dist/, bin/ and the production dependencies only.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY machines ./machines
COPY src ./src
RUN npm run build

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY --from=build /app/dist ./dist
# `understudy` on PATH: `docker compose exec node-1 understudy status` (see the README).
RUN ln -s /app/bin/understudy.js /usr/local/bin/understudy

USER node
# The node's HTTP server (/healthz, /readyz, /metrics, /status) when run with --http 0.0.0.0:9100.
EXPOSE 9100
ENTRYPOINT ["node", "--max-semi-space-size=64", "bin/understudy.js"]
CMD ["--help"]
