FROM python:3.12-slim
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README.md ./
COPY . .
RUN uv sync --frozen --no-dev && python -c "import sys"
ENV PATH="/app/.venv/bin:$PATH" DJANGO_SETTINGS_MODULE=config.settings
RUN SECRET_KEY=build DATABASE_URL=postgresql://x@localhost/x REDIS_URL=redis://localhost:6379/0 python manage.py collectstatic --noinput
EXPOSE 8000
