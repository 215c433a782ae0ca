import dev.reauth.Command;
import dev.reauth.Config;
import dev.reauth.Coordinator;
import dev.reauth.Credentials;
import dev.reauth.NativePlatforms;
import dev.reauth.RequestOptions;
import dev.reauth.Submitted;

/** Run by check-jar.sh with only a JDK: the jar must bring its native library. */
public class Check {
    public static void main(String[] args) throws Exception {
        // As an app that starts with the generated API should: a platform the jar lacks
        // gets the error that names it (check-jar.sh makes one).
        NativePlatforms.check();
        try (Coordinator core = new Coordinator(new Config())) {
            core.login(0, new Credentials("at-1", "rt-1", null));
            Submitted submitted = core.submit(1, new RequestOptions());
            Command.Send send = (Command.Send) submitted.getCommands().get(0);
            if (!send.getAccessToken().expose().equals("at-1")) throw new AssertionError("wrong token");
            if (!dev.reauth.okhttp.FastPath.jniFastPath()) throw new AssertionError("the JNI fast path did not bind");
            System.out.println("jar check (" + NativePlatforms.getCurrent() + ", " + System.getProperty("java.vm.name")
                + "): the native library loads, its JNI fast path binds (only a JDK, from Java): ok");
        }
    }
}
