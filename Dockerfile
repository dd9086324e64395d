# The understudy node image: `docker build -t understudy .`, then
#   docker run understudy node --id n1 --cluster main --nats nats://... --etcd http://...
# (docker-compose.yml runs three of them). TypeScript runs through tsx: no build step.
FROM node:20-slim

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY machines ./machines
COPY src ./src

USER node
# The node's HTTP server (/healthz, /readyz, /metrics, /status) when run with --http 0.0.0.0:9100.
EXPOSE 9100
ENTRYPOINT ["node", "bin/understudy.js"]
CMD ["--help"]
