# Source this (`source localstack/env.sh`) to point AWS SDKs and the AWS CLI at the local
# emulators started by localstack/start.sh. Variables already set are kept.
# shellcheck shell=bash
: "${AWS_ENDPOINT_URL:=http://127.0.0.1:4566}"         # LocalStack: SQS, SES v1, EventBridge, Scheduler
: "${AWS_ENDPOINT_URL_DYNAMODB:=http://127.0.0.1:8000}" # DynamoDB Local
: "${AWS_ENDPOINT_URL_SESV2:=http://127.0.0.1:5055}"    # moto server: SES v2
: "${AWS_REGION:=us-east-1}"
: "${AWS_DEFAULT_REGION:=$AWS_REGION}"
: "${AWS_ACCESS_KEY_ID:=test}"
: "${AWS_SECRET_ACCESS_KEY:=test}"
export AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SESV2 AWS_REGION \
  AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
