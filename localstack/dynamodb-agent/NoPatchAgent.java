// The Java agent LocalStack's DynamoDB passes to its DynamoDB Local, built by
// localstack/install.sh as ddb-local-loader-0.1.jar in LocalStack's package directory.
//
// LocalStack 4.6.0 always starts DynamoDB Local with -javaagent:<its dir>/ddb-local-loader-0.1.jar,
// a jar it downloads from its GitHub artifacts repository (not from any package registry, so not
// here: without a jar at that path the JVM refuses to start). Its only job is to raise DynamoDB
// Local's limit of 20 global secondary indexes per table to 100. This agent changes nothing:
// DynamoDB Local keeps AWS's own default limit of 20 (the template has no GSIs at all).
package fmn.localstack;

import java.lang.instrument.Instrumentation;

public final class NoPatchAgent {
    private NoPatchAgent() {}

    public static void premain(String args, Instrumentation instrumentation) {
        // Deliberately nothing: see the comment above.
    }
}
