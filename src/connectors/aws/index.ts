export {
  awsClientConfig,
  awsTargetProblems,
  parseAwsTarget,
  AWS_SERVICES,
  AWS_TARGET_KEYS,
  type AwsService,
  type AwsStaticCredentials,
  type AwsTarget,
} from './aws-settings.js';
