# Stand-in for postgres:16-bookworm where no registry can be reached
# (scripts/compose-test): Debian's PostgreSQL 15 with an entrypoint that
# honours POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and PGDATA as the
# official image's does.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
